#!/usr/bin/env python3
"""A WHIP publisher independent of our code: aiortc (a Python WebRTC stack) sends a moving
test picture as H.264 and a tone as Opus to a WHIP endpoint for a while, then DELETEs its
session. Prints one line per step (`status 201`, `connected`, `sent N frames`, `deleted 200`)
and exits 0 when the publish went through, 1 when it did not, 3 when the server refused
the offer (its status and body are printed).

Usage: whip_publish.py URL KEY SECONDS [--no-delete] [--size WxH] [--rsa]
--rsa: our DTLS certificate is RSA 2048 (aiortc makes ECDSA P-256 ones), as some WebRTC
stacks have; the server must take both.
aioice never offers loopback candidates: for a loopback test its host addresses are
patched to 127.0.0.1 (TESTING-CLIENTS.md)."""

import asyncio
import fractions
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice.ice
import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

if "--rsa" in sys.argv:
    import aiortc.rtcdtlstransport as dtls
    from cryptography.hazmat.primitives.asymmetric import rsa

    def _rsa_certificate(cls):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key=key, cert=dtls.generate_certificate(key))

    dtls.RTCCertificate.generateCertificate = classmethod(_rsa_certificate)

WIDTH, HEIGHT, FPS = 320, 240, 30
if "--size" in sys.argv:
    WIDTH, HEIGHT = (int(v) for v in sys.argv[sys.argv.index("--size") + 1].split("x"))


class Paced(MediaStreamTrack):
    """A track whose frame n is due n * period seconds after its first."""

    period = 1.0

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None

    async def due(self):
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n * self.period - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


class Picture(Paced):
    """A bar that moves a little each frame over a grey field (yuv420p, no numpy)."""

    kind = "video"
    period = 1 / FPS

    async def recv(self):
        await self.due()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        x = (self.n * 4) % WIDTH
        luma = bytearray([96]) * (WIDTH * HEIGHT)
        for row in range(HEIGHT):
            o = row * WIDTH
            end = min(x + 24, WIDTH)
            luma[o + x:o + end] = b"\xeb" * (end - x)
        for i, plane in enumerate(frame.planes):
            w = plane.line_size
            h = HEIGHT if i == 0 else HEIGHT // 2
            cw = WIDTH if i == 0 else WIDTH // 2
            if i == 0:
                rows = b"".join(bytes(luma[r * WIDTH:(r + 1) * WIDTH]) + b"\x00" * (w - cw) for r in range(h))
            else:
                rows = (b"\x80" * cw + b"\x00" * (w - cw)) * h
            plane.update(rows)
        frame.pts = self.n * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


class Tone(Paced):
    """A 440 Hz tone, 20 ms per frame, s16 stereo at 48 kHz."""

    kind = "audio"
    period = 0.02

    async def recv(self):
        await self.due()
        samples = 960
        pcm = bytearray()
        for i in range(samples):
            t = (self.n * samples + i) / 48000
            v = int(6000 * math.sin(2 * math.pi * 440 * t))
            b = v.to_bytes(2, "little", signed=True)
            pcm += b + b
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = 48000
        frame.pts = self.n * samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


def http(method, url, key, body=None, ctype=None):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


async def main():
    url, key, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delete = "--no-delete" not in sys.argv
    pc = RTCPeerConnection()
    video = Picture()
    tv = pc.addTransceiver(video, direction="sendonly")
    tv.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    pc.addTransceiver(Tone(), direction="sendonly")
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def _state():
        print(f"state {pc.connectionState}", flush=True)
        if pc.connectionState == "connected":
            connected.set()

    await pc.setLocalDescription(await pc.createOffer())
    status, headers, body = await asyncio.get_running_loop().run_in_executor(
        None, http, "POST", url, key, pc.localDescription.sdp.encode(), "application/sdp"
    )
    print(f"status {status}", flush=True)
    if "--rsa" in sys.argv:
        print("certificate rsa", flush=True)
    if status != 201:
        print(f"body {body.strip()}", flush=True)
        await pc.close()
        return 3
    location = headers.get("Location")
    print(f"location {location}", flush=True)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    try:
        await asyncio.wait_for(connected.wait(), 15)
    except asyncio.TimeoutError:
        print("never connected", flush=True)
        await pc.close()
        return 1
    print("connected", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        if pc.connectionState != "connected":
            print(f"lost: {pc.connectionState}", flush=True)
            await pc.close()
            return 1
    print(f"sent {video.n} frames", flush=True)
    if location:
        # What the origin says it receives (GET on the session).
        status, _, body = await asyncio.get_running_loop().run_in_executor(
            None, http, "GET", urllib.parse.urljoin(url, location), key
        )
        print(f"report {status} {body.strip()}", flush=True)
    if delete and location:
        target = urllib.parse.urljoin(url, location)
        status, _, _ = await asyncio.get_running_loop().run_in_executor(None, http, "DELETE", target, key)
        print(f"deleted {status}", flush=True)
    await pc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
