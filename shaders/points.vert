#version 330 core
// Point splats as instanced quads (exact placement and any size on every driver, unlike
// GL_POINTS): one instance per point, four corners per instance. a_position is mapped to
// clip space by u_mvp (for overlays: image pixels -> NDC); u_point_size is the diameter in
// framebuffer pixels and u_viewport the viewport size in pixels.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec2 a_corner;
uniform mat4 u_mvp;
uniform float u_point_size;
uniform vec2 u_viewport;
out vec2 v_offset;

void main() {
    vec4 centre = u_mvp * vec4(a_position, 1.0);
    v_offset = a_corner;
    vec2 offset_ndc = a_corner * u_point_size / u_viewport;
    gl_Position = centre + vec4(offset_ndc * centre.w, 0.0, 0.0);
}
