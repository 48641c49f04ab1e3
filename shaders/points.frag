#version 330 core
// Round splat with a dark rim so points read on both bright and dark images.
in vec2 v_offset;
uniform vec4 u_color;
out vec4 frag_color;

void main() {
    float r = dot(v_offset, v_offset);
    if (r > 1.0) discard;
    float rim = smoothstep(0.6, 0.95, r);
    frag_color = vec4(mix(u_color.rgb, u_color.rgb * 0.25, rim), u_color.a);
}
