"""The style palette, what shoppers say about styles, and each style's default renderer."""
