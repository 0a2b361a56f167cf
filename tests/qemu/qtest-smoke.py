#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""qtest-smoke.py QEMU WORKDIR [SEED] - the maptbl-pci device without a guest (issue #8 §1, §4).

Runs the QEMU that hw-iface/qemu/build-qemu.sh built with the qtest accelerator and speaks the
qtest protocol (config space through q35's ECAM, BAR reads and writes). Checks, in order:
  identity   PF 1234:4d54, ARI at 0x100, SR-IOV at 0x120 (TotalVFs 4, VF device 4d55)
  pf         BAR0 = the PF register page: ID, VERSION (1.1), FUNC 0, MAX_VFS 4
  vfs        NumVFs 2 + VF Enable: functions 04.1 and 04.2 appear; their BAR0 pages answer
             FUNC 1 and 2; NumVFs 6 (> TotalVFs) creates none; VF Enable 0 removes them
  hostile    thousands of random accesses (any size, any offset, any value) to the PF and VF
             pages and to the SR-IOV control (VFs enabled and disabled under the device), tables
             and rings pointed at guest RAM, at the device's own BARs and at ECAM: QEMU must
             survive, keep answering, and log guest errors
Exit 0 passed, 1 failed. Prints each step's duration.
"""
import os
import random
import socket
import subprocess
import sys
import time

ECAM = 0xB0000000
PF_DEVFN = 4 << 3
PF_BAR0, PF_BAR2 = 0xE0000000, 0xE0010000
VF_BAR0, VF_BAR2 = 0xE0100000, 0xE0200000
SRIOV = 0x120
ID = 0x4C42544D


def cfg(fn, reg):
    return ECAM + ((PF_DEVFN + fn) << 12) + reg


class QTest:
    def __init__(self, qemu, work, disk):
        path = os.path.join(work, "qtest.sock")
        self.log = os.path.join(work, "guest-errors.log")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(120)
        self.err = open(os.path.join(work, "qemu.err"), "w+")
        self.proc = subprocess.Popen(
            [qemu, "-M", "q35", "-accel", "qtest", "-qtest", "unix:" + path, "-nodefaults",
             "-display", "none", "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
             "-drive", "if=none,id=d0,file=%s,format=raw" % disk,
             "-device", "maptbl-pci,addr=04.0,drive=d0,total_vfs=4",
             "-d", "guest_errors", "-D", self.log],
            stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        self.sock, _ = srv.accept()
        srv.close()
        self.f = self.sock.makefile("rw")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            r = self.f.readline()
            if not r:
                raise RuntimeError("QEMU closed the qtest socket after '%s' (crashed?)" % line)
            if not r.startswith("IRQ"):
                break
        parts = r.split()
        if parts[0] != "OK":
            raise RuntimeError("'%s': %s" % (line, r.strip()))
        return int(parts[1], 16) if len(parts) > 1 else None

    def rd(self, size, addr):
        return self.cmd("read%s 0x%x" % ({1: "b", 2: "w", 4: "l", 8: "q"}[size], addr))

    def wr(self, size, addr, val):
        self.cmd("write%s 0x%x 0x%x" % ({1: "b", 2: "w", 4: "l", 8: "q"}[size], addr, val))

    def close(self):
        self.proc.terminate()
        rc = self.proc.wait(60)
        self.err.seek(0)
        return rc, self.err.read()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    if len(sys.argv) < 3:
        print("usage: qtest-smoke.py QEMU WORKDIR [SEED]", file=sys.stderr)
        return 2
    qemu, work = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 32)
    disk = os.path.join(work, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(16 << 20)

    t = time.monotonic()

    def step(name, detail=""):
        nonlocal t
        now = time.monotonic()
        print("step %-9s %6.1f s  %s" % (name, now - t, detail), flush=True)
        t = now

    q = QTest(qemu, work, disk)
    step("start")
    # q35: enable ECAM at 0xb0000000 (MCH PCIEXBAR, config offset 0x60 of 00:00.0).
    q.cmd("outl 0xcf8 0x80000060")
    q.cmd("outl 0xcfc 0x%x" % (ECAM | 1))
    check(q.rd(4, cfg(0, 0)) == 0x4D541234, "PF vendor:device is not 1234:4d54")
    check(q.rd(4, cfg(0, 0x100)) & 0xFFFF == 0x000E, "no ARI capability at 0x100")
    check(q.rd(4, cfg(0, SRIOV)) & 0xFFFF == 0x0010, "no SR-IOV capability at 0x120")
    check(q.rd(2, cfg(0, SRIOV + 0x0E)) == 4, "TotalVFs is not 4")
    check(q.rd(2, cfg(0, SRIOV + 0x1A)) == 0x4D55, "VF device ID is not 4d55")
    step("identity", "1234:4d54, ARI, SR-IOV TotalVFs 4, VF 4d55")

    def restore():
        """BARs, COMMAND and ECAM as this test set them (the device's own DMA may hit them)."""
        q.cmd("outl 0xcf8 0x80000060")
        q.cmd("outl 0xcfc 0x%x" % (ECAM | 1))
        q.wr(4, cfg(0, 0x10), PF_BAR0)
        q.wr(4, cfg(0, 0x14), 0)
        q.wr(4, cfg(0, 0x18), PF_BAR2)
        q.wr(4, cfg(0, 0x1C), 0)
        q.wr(2, cfg(0, 0x04), 0x0006)  # MEM + Bus Master
        q.wr(4, cfg(0, SRIOV + 0x24), VF_BAR0)
        q.wr(4, cfg(0, SRIOV + 0x28), 0)
        q.wr(4, cfg(0, SRIOV + 0x2C), VF_BAR2)
        q.wr(4, cfg(0, SRIOV + 0x30), 0)

    restore()
    check(q.rd(4, PF_BAR0) == ID, "PF ID register")
    check(q.rd(4, PF_BAR0 + 4) == 0x00010001, "PF VERSION register")
    check(q.rd(4, PF_BAR0 + 8) == 0, "PF FUNC register")
    check(q.rd(4, PF_BAR0 + 0x100) == 4, "PF MAX_VFS register")
    check(q.rd(2, PF_BAR0 + 2) == 0xFFFF, "a 2-byte read is not all ones (bad access)")
    step("pf", "ID, VERSION 1.1, FUNC 0, MAX_VFS 4; bad access = all ones")

    def set_vfs(n, ctrl):
        q.wr(2, cfg(0, SRIOV + 0x08), 0)
        q.wr(2, cfg(0, SRIOV + 0x10), n)
        q.wr(2, cfg(0, SRIOV + 0x08), ctrl)

    def present(fn):
        return q.rd(4, cfg(fn, 0x08)) != 0xFFFFFFFF

    set_vfs(2, 0x9)  # VF Enable + VF MSE
    check(present(1) and present(2) and not present(3), "NumVFs 2: functions 04.1-04.2 expected")
    check(q.rd(4, cfg(1, 0)) == 0xFFFFFFFF, "VF vendor/device must read ffff")
    q.wr(4, PF_BAR0 + 0x104, 2)  # NUM_VFS
    for fn in (1, 2):
        q.wr(2, cfg(fn, 0x04), 0x0006)
        base = VF_BAR0 + (fn - 1) * 0x1000
        check(q.rd(4, base) == ID, "VF %d ID register" % fn)
        check(q.rd(4, base + 8) == fn, "VF %d FUNC register" % fn)
        check(q.rd(4, base + 0x100) == 0xFFFFFFFF, "VF %d page has a PF register" % fn)
    set_vfs(6, 0x9)
    check(not present(1), "NumVFs 6 > TotalVFs 4 created VFs")
    set_vfs(0, 0)
    check(not present(1), "VF Enable 0 left VFs behind")
    step("vfs", "2 VFs answer FUNC 1, 2; NumVFs 6 refused; disable removes them")

    rng = random.Random(seed)
    targets = [PF_BAR0, 0x0, 0xE0000000 - 0x1000, ECAM + (PF_DEVFN << 12), VF_BAR0,
               0x100000, 0x7FFFF000]
    n_ops = 4000
    for i in range(n_ops):
        r = rng.random()
        if r < 0.04:
            set_vfs(rng.randrange(0, 7), rng.choice((0, 0x9, 0x1, 0x8)))
            for fn in range(1, 5):
                if present(fn):
                    q.wr(2, cfg(fn, 0x04), 0x0006)
        elif r < 0.10:
            # Point a table, a ring or the fault queue somewhere dangerous and start it.
            vf = rng.randrange(1, 5)
            blk = PF_BAR0 + 0x1000 + (vf - 1) * 0x40
            addr = rng.choice(targets) + rng.randrange(0, 0x1000) // 64 * 64
            choice = rng.randrange(3)
            if choice == 0:
                q.wr(8, blk + 0x00, addr)
                q.wr(8, blk + 0x08, rng.choice((256, 4096, 8192, 1 << 40)))
                q.wr(8, blk + 0x10, rng.randrange(0, 1 << 49))
                q.wr(4, blk + 0x18, rng.choice((512, 4096, 3)))
                q.wr(4, blk + 0x1C, rng.randrange(0, 8))
            elif choice == 1:
                page = rng.choice((PF_BAR0, VF_BAR0 + (vf - 1) * 0x1000))
                q.wr(8, page + 0x30, addr)
                q.wr(8, page + 0x38, rng.choice(targets))
                q.wr(4, page + 0x40, rng.choice((2, 8, 4096, 3)))
                q.wr(4, page + 0x44, rng.choice((2, 8, 4096, 5)))
                q.wr(4, page + 0x28, 1)
                q.wr(4, page + 0x48, rng.randrange(0, 9))
            else:
                q.wr(8, PF_BAR0 + 0x110, addr)
                q.wr(4, PF_BAR0 + 0x118, rng.choice((2, 64, 4096, 7)))
                q.wr(4, PF_BAR0 + 0x11C, rng.randrange(0, 2))
        else:
            page, size = rng.choice(((PF_BAR0, 0x2000), (VF_BAR0, 0x1000),
                                     (VF_BAR0 + 0x1000, 0x1000), (VF_BAR0 + 0x3000, 0x1000),
                                     (PF_BAR2, 0x1000)))
            width = rng.choice((1, 2, 4, 4, 4, 8, 8))
            off = rng.randrange(0, size - width + 1)
            if rng.random() < 0.5:
                q.rd(width, page + off)
            else:
                q.wr(width, page + off, rng.randrange(0, 1 << (8 * width)))
        if i % 500 == 499:
            restore()
            check(q.rd(4, PF_BAR0) == ID, "PF ID register after %d hostile operations" % (i + 1))
    restore()
    check(q.rd(4, PF_BAR0) == ID, "PF ID register after the hostile operations")
    step("hostile", "%d operations, seed %d: QEMU alive, registers answer" % (n_ops, seed))

    rc, err = q.close()
    for bad in ("Assertion", "Aborted", "Segmentation", "core dumped"):
        check(bad not in err, "QEMU said '%s': %s" % (bad, err.strip()[-500:]))
    check(rc in (0, -15), "QEMU exit status %d: %s" % (rc, err.strip()[-500:]))
    with open(q.log) as f:
        logged = sum(1 for line in f if "maptbl-pci" in line)
    check(logged > 0, "no guest error logged")
    step("exit", "QEMU ended cleanly; %d guest errors logged" % logged)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e)
        sys.exit(1)
