"""Running the netfilter tools (iptables-restore, nft, conntrack) without blocking the loop.

All of them act on the network namespace the proxy process runs in, which is
how the lab runs one proxy per simulated node.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


class ToolError(RuntimeError):
    def __init__(self, argv: list[str], result: Result) -> None:
        super().__init__(f"{' '.join(argv)} exited {result.code}: {result.stderr.strip()[:2000]}")
        self.result = result


async def run(argv: list[str], stdin: str | None = None, check: bool = True, timeout: float = 300) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    result = Result(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and result.code != 0:
        raise ToolError(argv, result)
    return result


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
