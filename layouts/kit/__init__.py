"""The component kit every page composes (not a page): header, KPI tiles, the feed's health,
the basemap, the clock and number formats. Import the module that defines a piece
(``layouts.kit.tiles``, …); the kit imports no page.
"""
