"""The legacy MESA protocol (2000-era GRE cine): acquisition planning, rendering, exam generation."""
