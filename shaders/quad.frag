#version 330 core
// Samples the quad's texture. Images are uploaded as BGR(A) with format GL_BGR(A), so the
// texture already holds RGB. u_alpha_from_red turns a grey text mask into a tinted overlay.
in vec2 v_uv;
uniform sampler2D u_texture;
uniform float u_opacity;
uniform int u_alpha_from_red;
uniform vec3 u_tint;
out vec4 frag_color;

void main() {
    vec4 texel = texture(u_texture, v_uv);
    if (u_alpha_from_red == 1) {
        frag_color = vec4(u_tint, texel.r * u_opacity);
    } else {
        frag_color = vec4(texel.rgb, u_opacity);
    }
}
