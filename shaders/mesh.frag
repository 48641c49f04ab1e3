#version 330 core
// u_shading 0: Blinn-Phong with a key light near the viewer and a fill light; 1: a
// procedural matcap (clay look) indexed by the view-space normal, no texture needed;
// 2: the person's own colours per vertex (they already hold the scene's light: only a
// faint key light is added, so the shape still reads when the view is turned).
in vec3 v_position_view;
in vec3 v_normal_view;
in vec3 v_colour;
uniform vec3 u_albedo;
uniform int u_shading;
out vec4 frag_color;

vec3 phong(vec3 n, vec3 view_dir) {
    vec3 key = normalize(vec3(-0.35, 0.45, 1.0));
    vec3 fill = normalize(vec3(0.6, -0.2, 0.5));
    float diffuse = max(dot(n, key), 0.0) * 0.75 + max(dot(n, fill), 0.0) * 0.25;
    vec3 h = normalize(key + view_dir);
    float specular = pow(max(dot(n, h), 0.0), 32.0) * 0.25;
    return u_albedo * (0.18 + diffuse) + vec3(specular);
}

vec3 matcap(vec3 n) {
    // The sphere lookup a matcap image would do, with the image replaced by a formula:
    // a warm top-left highlight, a cool bottom and a rim.
    vec2 uv = n.xy * 0.5 + 0.5;
    float top = smoothstep(0.0, 1.0, uv.y);
    vec3 base = mix(vec3(0.32, 0.30, 0.36), u_albedo * 1.1, top);
    float highlight = pow(max(dot(n, normalize(vec3(-0.4, 0.5, 0.77))), 0.0), 24.0);
    float rim = pow(1.0 - max(n.z, 0.0), 3.0);
    return base + vec3(0.35) * highlight + vec3(0.18, 0.2, 0.25) * rim;
}

void main() {
    vec3 n = normalize(v_normal_view);
    vec3 view_dir = normalize(-v_position_view);
    // Back faces (open meshes such as a face mask) are lit as seen from the viewer.
    if (dot(n, view_dir) < 0.0) n = -n;
    vec3 color;
    if (u_shading == 2) {
        vec3 key = normalize(vec3(-0.35, 0.45, 1.0));
        color = v_colour * (0.88 + 0.14 * max(dot(n, key), 0.0));
    } else {
        color = (u_shading == 1) ? matcap(n) : phong(n, view_dir);
    }
    frag_color = vec4(clamp(color, 0.0, 1.0), 1.0);
}
