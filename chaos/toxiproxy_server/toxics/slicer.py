"""slicer: cuts every chunk into pieces of about ``average_size`` bytes, ``delay`` µs apart.

A range is kept whole when ``length - average_size <= size_variation``; otherwise it is
split at its middle, moved by a uniform offset in [-size_variation, +size_variation) when
size_variation > 0, and both halves are treated the same way. Bytes are unchanged.

The reference recurses without end (and crashes) for average_size 0, and for sizes where
no range can ever be kept or a split point falls outside its range; those are refused
with a 400: average_size must be at least 1 and
1 - average_size <= size_variation <= average_size + 1.
"""

import random

from ..gojson import INT
from ..stream import Chunk, micros
from . import Toxic, receive, register


@register
class Slicer(Toxic):
    type_name = "slicer"
    go_struct = "SlicerToxic"
    fields = ("average_size", "size_variation", "delay")
    go_int = INT

    @classmethod
    def invalid(cls, attrs):
        average, variation = attrs["average_size"], attrs["size_variation"]
        if average < 1:
            return (
                f"average_size must be greater than 0, got {average} "
                "(the reference server crashes on it)"
            )
        if not 1 - average <= variation <= average + 1:
            return (
                f"size_variation must be between {1 - average} and {average + 1} for "
                f"average_size {average}, got {variation} "
                "(the reference server crashes on it)"
            )
        return None

    @staticmethod
    def cut(length: int, average: int, variation: int) -> list[tuple[int, int]]:
        """The (start, end) pieces of a chunk of ``length`` bytes, in order."""
        pieces: list[tuple[int, int]] = []
        todo = [(0, length)]  # ranges still to cut; the next one is last
        for _ in range(64 * (length + 2)):  # bounds the (rare) retries when mid == start
            if not todo:
                return pieces
            start, end = todo.pop()
            if (end - start) - average <= variation:
                pieces.append((start, end))
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += random.randrange(2 * variation) - variation
            todo.append((mid, end))
            todo.append((start, mid))
        return pieces + todo[::-1]

    @classmethod
    async def pipe(cls, stub, attrs):
        pause = micros(attrs["delay"])
        while (chunk := await receive(stub)) is not None:
            data = chunk.data
            for start, end in cls.cut(len(data), attrs["average_size"], attrs["size_variation"]):
                await stub.send(Chunk(data[start:end], chunk.ts))
                if await stub.sleep(pause):
                    await stub.send(Chunk(data[end:], chunk.ts))  # the rest, whole
                    return
