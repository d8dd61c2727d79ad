"""Image pulls per `imagePullPolicy`, with upstream's back-off between failures.

A failed pull is remembered per image: until the back-off expires the
container waits with `ImagePullBackOff` instead of hammering the registry
(10 s doubling to 5 min, as upstream). Concurrent workers asking for the same
image share one pull.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cri import api_pb2
from cri.client import ImageClient
from cri.errors import CRIError

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0


class ImagePullError(Exception):
    """Carries the container's waiting reason (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _Failure:
    until: float
    delay: float
    message: str


class ImageManager:
    def __init__(self, images: ImageClient) -> None:
        self.images = images
        self._failures: dict[str, _Failure] = {}
        self._pulls: dict[str, asyncio.Task[str]] = {}

    async def present(self, image: str) -> str | None:
        response = await self.images.image_status(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image)))
        return str(response.image.id) if response.HasField("image") and response.image.id else None

    async def ensure(self, image: str, policy: str) -> tuple[str, bool]:
        """The image's reference, and whether it was pulled now (for the Pulling/Pulled events)."""
        if policy != "Always":
            ref = await self.present(image)
            if ref:
                return ref, False
            if policy == "Never":
                raise ImagePullError("ErrImageNeverPull",
                                     f'Container image "{image}" is not present with pull policy of Never')
        failure = self._failures.get(image)
        if failure is not None and time.monotonic() < failure.until:
            raise ImagePullError("ImagePullBackOff", f'Back-off pulling image "{image}": {failure.message}')
        task = self._pulls.get(image)
        if task is None:
            task = asyncio.create_task(self._pull(image))
            self._pulls[image] = task
            task.add_done_callback(lambda _t: self._pulls.pop(image, None))
        return await asyncio.shield(task), True

    async def _pull(self, image: str) -> str:
        try:
            response = await self.images.pull_image(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image)))
        except CRIError as exc:
            previous = self._failures.get(image)
            delay = min(previous.delay * 2, BACKOFF_MAX) if previous else BACKOFF_INITIAL
            message = f'Failed to pull image "{image}": {exc.details}'
            self._failures[image] = _Failure(time.monotonic() + delay, delay, message)
            raise ImagePullError("ErrImagePull", message) from exc
        self._failures.pop(image, None)
        return str(response.image_ref)

    def in_backoff(self, image: str) -> bool:
        failure = self._failures.get(image)
        return failure is not None and time.monotonic() < failure.until
