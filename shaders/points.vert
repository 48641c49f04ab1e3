#version 330 core
// Point splats: positions in some 3D space mapped to clip space by u_mvp (for overlays the
// matrix maps image pixels to NDC). Size is in framebuffer pixels.
layout(location = 0) in vec3 a_position;
uniform mat4 u_mvp;
uniform float u_point_size;

void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
    gl_PointSize = u_point_size;
}
