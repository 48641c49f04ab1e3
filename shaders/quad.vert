#version 330 core
// Textured quad: a unit square (corner in [0,1]^2) placed at `u_rect` (x0, y0, x1, y1 in NDC).
// Texture v = 0 is the first row of the uploaded image (its top), so v grows downwards.
layout(location = 0) in vec2 a_corner;
uniform vec4 u_rect;
out vec2 v_uv;

void main() {
    vec2 ndc = mix(u_rect.xy, u_rect.zw, a_corner);
    v_uv = vec2(a_corner.x, 1.0 - a_corner.y);
    gl_Position = vec4(ndc, 0.0, 1.0);
}
