#version 330 core
// Lit triangle mesh. Positions/normals arrive in camera space (x right, y down, z forward,
// metres); u_model_view includes the flip to GL's y-up, z-backwards view space, where the
// lighting is done.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;
layout(location = 2) in vec3 a_colour;  // RGB in [0, 1] (textured shading only)
uniform mat4 u_model_view;
uniform mat4 u_projection;
uniform float u_depth_shift_ndc;
out vec3 v_position_view;
out vec3 v_normal_view;
out vec3 v_colour;

void main() {
    vec4 p = u_model_view * vec4(a_position, 1.0);
    v_position_view = p.xyz;
    v_colour = a_colour;
    // The model-view matrix is a rotation plus translation, so it transforms normals as is.
    v_normal_view = mat3(u_model_view) * a_normal;
    gl_Position = u_projection * p;
    // A constant shift towards the viewer (MeshDrawer: a mesh drawn over another one).
    gl_Position.z -= u_depth_shift_ndc * gl_Position.w;
}
