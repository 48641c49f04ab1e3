"""GL drawers, one job each: textured quads, text labels, image-space overlays, lit meshes."""
