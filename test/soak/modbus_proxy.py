"""A Modbus TCP man-in-the-middle between the meters plugin and the sim's
simulated grid meter, for the soak's link faults:

  "ok"       bytes pass unchanged
  "cut"      every open connection is closed and new ones are closed at once
             (a pulled cable / a dead gateway)
  "corrupt"  a share of the meter's replies gets a damaged MBAP header or
             function code, or is cut short (a flaky gateway); the data bytes
             are left alone, so a careful client can tell every damaged frame

It runs in a thread of the runner; `mode` may be changed at any time."""

import random
import selectors
import socket
import threading


class ModbusProxy:
    def __init__(self, listen_port, target_port, seed=1, corrupt_share=0.3):
        self.target = ("127.0.0.1", target_port)
        self.mode = "ok"
        self.rng = random.Random(seed)
        self.corrupt_share = corrupt_share
        self.counts = {"connections": 0, "frames": 0, "corrupted": 0, "cut": 0}
        self.sel = selectors.DefaultSelector()
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", listen_port))
        self.server.listen(8)
        self.server.setblocking(False)
        self.sel.register(self.server, selectors.EVENT_READ, ("accept", None))
        self.pairs = []  # [client, upstream]
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="modbus-proxy", daemon=True)
        self.thread.start()

    def set_mode(self, mode):
        assert mode in ("ok", "cut", "corrupt")
        self.mode = mode

    def stop(self):
        self._stop = True
        self.thread.join(2.0)
        for pair in list(self.pairs):
            self._close(pair)
        self.server.close()

    def _close(self, pair):
        if pair in self.pairs:
            self.pairs.remove(pair)
        for s in pair:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def _run(self):
        while not self._stop:
            if self.mode == "cut" and self.pairs:
                for pair in list(self.pairs):
                    self._close(pair)
                    self.counts["cut"] += 1
            for key, _ in self.sel.select(0.05):
                kind, pair = key.data
                if kind == "accept":
                    self._accept()
                else:
                    self._forward(key.fileobj, pair, to_client=(kind == "up"))

    def _accept(self):
        try:
            client, _ = self.server.accept()
        except OSError:
            return
        if self.mode == "cut":
            client.close()
            self.counts["cut"] += 1
            return
        try:
            up = socket.create_connection(self.target, timeout=1.0)
        except OSError:
            client.close()
            return
        client.setblocking(False)
        up.setblocking(False)
        pair = [client, up]
        self.pairs.append(pair)
        self.counts["connections"] += 1
        self.sel.register(client, selectors.EVENT_READ, ("down", pair))
        self.sel.register(up, selectors.EVENT_READ, ("up", pair))

    def _forward(self, sock, pair, to_client):
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(pair)
            return
        if to_client:
            self.counts["frames"] += 1
            if self.mode == "corrupt" and self.rng.random() < self.corrupt_share:
                data = self._damage(data)
                self.counts["corrupted"] += 1
        try:
            (pair[0] if to_client else pair[1]).sendall(data)
        except OSError:
            self._close(pair)

    def _damage(self, frame):
        """MBAP: transaction id (2), protocol id (2), length (2), unit (1); then the function code."""
        b = bytearray(frame)
        how = self.rng.randrange(5)
        if how == 0 and len(b) >= 2:
            b[self.rng.randrange(2)] ^= 0x5A             # transaction id
        elif how == 1 and len(b) >= 4:
            b[2 + self.rng.randrange(2)] ^= 0x01          # protocol id not 0
        elif how == 2 and len(b) >= 6:
            b[5] = (b[5] + 1 + self.rng.randrange(5)) & 0xFF  # length disagrees
        elif how == 3 and len(b) >= 8:
            b[7] ^= 0x22                                  # function code
        else:
            b = b[:max(1, len(b) // 2)]                   # cut short
        return bytes(b)
