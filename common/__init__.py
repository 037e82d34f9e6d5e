"""What every part of stylerec shares and that imports none of them: the error base class, atomic writes, top-k.

`transfer/`, `index/` and `recsys/` may import `common/`; `common/` imports only the standard library and numpy.
"""
