"""Bridges: other systems (the 12345 hotline, alarms) as producers onto the case stream.

``inbox`` reads their records (a folder or a stream, with a checkpoint), ``bridge`` maps,
publishes and dead-letters them; one module per source system registers its mapper.
docs/sources.md describes the framework and every source's format.
"""
