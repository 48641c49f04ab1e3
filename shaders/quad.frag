#version 330 core
// Samples the quad's texture. Images are uploaded as BGR(A) with format GL_BGR(A), so the
// texture already holds RGB. u_alpha_from_red turns a grey text mask into a tinted overlay.
// With u_use_coverage, the alpha channel is a ramp across an outline (0.5 on it; see
// engine.render.volume_image): interpolated by the texture unit and scaled to screen pixels
// it gives each pixel's coverage, so a coarse lattice image is drawn with a one-pixel
// anti-aliased outline at any size, over black.
in vec2 v_uv;
uniform sampler2D u_texture;
uniform float u_opacity;
uniform int u_alpha_from_red;
uniform int u_use_coverage;
uniform float u_coverage_scale;
uniform vec3 u_tint;
out vec4 frag_color;

void main() {
    vec4 texel = texture(u_texture, v_uv);
    if (u_alpha_from_red == 1) {
        frag_color = vec4(u_tint, texel.r * u_opacity);
    } else if (u_use_coverage == 1) {
        float coverage = clamp((texel.a - 0.5) * u_coverage_scale + 0.5, 0.0, 1.0);
        frag_color = vec4(texel.rgb * coverage, u_opacity);
    } else {
        frag_color = vec4(texel.rgb, u_opacity);
    }
}
