"""UDP recorder between dig and dnsmasq: saves every query and every answer it relays.

Usage (inside a network namespace): record.py LISTEN_PORT UPSTREAM_PORT OUT_DIR
"""
import hashlib, os, socket, sys

listen_port, upstream_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(("127.0.0.1", listen_port))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.connect(("127.0.0.1", upstream_port))
back.settimeout(2)

def save(kind, data):
    name = "%s-%s" % (kind, hashlib.sha1(data).hexdigest()[:12])
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

print("ready", flush=True)
while True:
    query, client = front.recvfrom(65535)
    save("query", query)
    back.send(query)
    try:
        answer = back.recv(65535)
    except socket.timeout:
        continue
    save("answer", answer)
    front.sendto(answer, client)
