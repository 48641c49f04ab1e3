#version 330 core
// Round splat with a dark rim so points read on both bright and dark images.
uniform vec4 u_color;
out vec4 frag_color;

void main() {
    vec2 d = gl_PointCoord * 2.0 - 1.0;
    float r = dot(d, d);
    if (r > 1.0) discard;
    float rim = smoothstep(0.55, 0.85, r);
    frag_color = vec4(mix(u_color.rgb, u_color.rgb * 0.25, rim), u_color.a);
}
