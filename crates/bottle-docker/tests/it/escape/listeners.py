# "The outside" for the escape suite: on an ordinary bridge network the test creates, a TCP
# listener (greets every connection), a UDP listener (answers every datagram) and a DNS server
# (answers every A query with 192.0.2.99, TEST-NET-1). Every connection, datagram and query is
# logged to /tmp/seen.log, so the suite can show what reached it and what never did.
# `--check TCP UDP [DNS]` instead waits until such listeners answer on loopback.
import socket, struct, sys, threading, time

if sys.argv[1] != "--check":
    TCP, UDP = int(sys.argv[1]), int(sys.argv[2])
    DNS = int(sys.argv[3]) if len(sys.argv) > 3 else 53
lock = threading.Lock()


def log(kind, peer, what):
    with lock, open("/tmp/seen.log", "a") as f:
        f.write("%s %s %s\n" % (kind, peer[0], what))


def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", TCP))
    s.listen(64)
    while True:
        c, peer = s.accept()
        log("tcp", peer, "")
        try:
            c.sendall(b"hello\n")
        finally:
            c.close()


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", UDP))
    while True:
        data, peer = s.recvfrom(2048)
        log("udp", peer, data[:64].hex())
        s.sendto(b"hello\n", peer)


def qname(packet):
    labels, i = [], 12
    while i < len(packet) and packet[i]:
        labels.append(packet[i + 1:i + 1 + packet[i]].decode("ascii", "replace"))
        i += 1 + packet[i]
    return ".".join(labels), i + 5


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", DNS))
    while True:
        packet, peer = s.recvfrom(2048)
        if len(packet) < 17:
            continue
        name, end = qname(packet)
        log("dns", peer, name)
        qtype = struct.unpack(">H", packet[end - 4:end - 2])[0]
        answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("192.0.2.99") if qtype == 1 else b""
        header = packet[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if answers else 0, 0, 0)
        s.sendto(header + packet[12:end] + answers, peer)


def check():
    """`--check TCP UDP [DNS]`: wait until the listeners answer on loopback (20 s at most)."""
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", TCP), timeout=1).recv(8)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1)
            u.sendto(b"ready", ("127.0.0.1", UDP))
            u.recv(64)
            if DNS_CHECK:
                query = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x05ready\x00" + struct.pack(">HH", 1, 1)
                u.sendto(query, ("127.0.0.1", DNS))
                u.recv(512)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


if sys.argv[1] == "--check":
    DNS_CHECK = len(sys.argv) > 4
    TCP, UDP = int(sys.argv[2]), int(sys.argv[3])
    DNS = int(sys.argv[4]) if DNS_CHECK else 0
    check()
    sys.exit(0)

for target in (tcp, udp):
    threading.Thread(target=target, daemon=True).start()
open("/tmp/seen.log", "a").close()
dns()
