"""SynthFaces internals: parameters (:mod:`.params`), drawing machinery (:mod:`.canvas`), face parts
(:mod:`.parts`, :mod:`.outer`), the renderer (:mod:`.render`) and edit families (:mod:`.edits`).
The public API is :mod:`maskgan.data.synthfaces`."""
