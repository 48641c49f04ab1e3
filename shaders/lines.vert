#version 330 core
// Flat-coloured lines and wireframes (triangles drawn with glPolygonMode GL_LINE).
layout(location = 0) in vec3 a_position;
uniform mat4 u_mvp;
uniform float u_depth_shift_ndc;

void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
    // A constant shift towards the viewer (MeshDrawer: a mesh drawn over another one).
    gl_Position.z -= u_depth_shift_ndc * gl_Position.w;
}
