#version 330 core
// Flat-coloured lines and wireframes (triangles drawn with glPolygonMode GL_LINE).
layout(location = 0) in vec3 a_position;
uniform mat4 u_mvp;

void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
}
