# "The outside" for the escape suite: on an ordinary bridge network the test creates, a TCP
# listener (greets every connection), a UDP listener (answers every datagram) and a DNS server
# (answers every A query with 192.0.2.99, TEST-NET-1). Every connection, datagram and query is
# logged to /tmp/seen.log, so the suite can show what reached it and what never did.
import socket, struct, sys, threading

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


for target in (tcp, udp):
    threading.Thread(target=target, daemon=True).start()
open("/tmp/seen.log", "a").close()
dns()
