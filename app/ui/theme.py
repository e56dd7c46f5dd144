"""The app's look: one calm colour scheme, readable sizes, and the layout breakpoint."""

from __future__ import annotations

import flet as ft

NARROW = 700
"""Below this width (a phone) the navigation is a bar at the bottom; above it, a rail at the side."""
CONTENT_MAX = 860
"""On wide screens the content column stops growing here, so lines stay readable."""

SEED = "#2E6B5E"  # a quiet green-teal
MUTED = ft.Colors.ON_SURFACE_VARIANT
GOOD = "#1B6B3A"  # verified: dark green, 6.9:1 on white
WARN = "#8A4B00"  # not verified: dark amber, 6.5:1 on white
DANGER = "#A4262C"
CARD_BG = ft.Colors.SURFACE_CONTAINER_LOW
GAP = 12


def apply(page: ft.Page) -> None:
    page.title = "consent-agent"
    page.theme_mode = ft.ThemeMode.LIGHT
    page.theme = ft.Theme(color_scheme_seed=SEED, visual_density=ft.VisualDensity.STANDARD)
    page.dark_theme = ft.Theme(color_scheme_seed=SEED)
    page.padding = 0
    page.spacing = 0
