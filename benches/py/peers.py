"""The Python peers of W7: one multi-key read of the same keys over several servers, repeated.

    /usr/bin/python3 benches/py/peers.py pylibmc|pymemcache HOST:PORT,HOST:PORT,... KEY,KEY,...

The benchmark program (benches/src/cluster/python.rs) runs this as a subprocess and drives
it over stdin/stdout, one command per line, one answer per command:

    check     ->  "hits N", then N lines "KEY HEXVALUE": one call, every hit shown
    run US    ->  "done CALLS NS": calls for US microseconds, timed here; every call must
                  return a hit for every key
    (EOF)     ->  exits

The first line written, once the client is built, is "ready NAME VERSION..." (the library,
its version, and the Python version). The clients are built as their users build them:

- pylibmc (libmemcached): Client(servers, behaviors={"ketama_weighted": True}), get_multi.
  libmemcached writes every server's "get k1 .. kn" before it reads any reply.
- pymemcache: HashClient(servers) (rendezvous hashing over its pure-Python MurmurHash3, the
  default), get_many. It asks the servers one after the other.

A missing library exits with status 3 and a line "missing MODULE" on stdout.
"""

import sys
import time


def build(library, servers):
    """The client and its multi-key read, and a description of the library."""
    python = "Python %d.%d.%d" % sys.version_info[:3]
    if library == "pylibmc":
        import pylibmc

        client = pylibmc.Client(servers, behaviors={"ketama_weighted": True})
        version = "pylibmc %s (libmemcached %s), %s" % (
            pylibmc.__version__,
            pylibmc.libmemcached_version,
            python,
        )
        return client.get_multi, version
    if library == "pymemcache":
        import pymemcache
        from pymemcache.client.hash import HashClient

        nodes = []
        for server in servers:
            host, port = server.rsplit(":", 1)
            nodes.append((host, int(port)))
        client = HashClient(nodes)
        version = "pymemcache %s HashClient, %s" % (pymemcache.__version__, python)
        return client.get_many, version
    raise SystemExit("unknown library %r (pylibmc, pymemcache)" % library)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    library, servers, keys = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
    try:
        read, version = build(library, servers)
    except ImportError as error:
        print("missing", error.name, flush=True)
        sys.exit(3)
    print("ready", version, flush=True)
    expected = len(keys)
    for line in sys.stdin:
        command = line.split()
        if command == ["check"]:
            hits = read(keys)
            answer = ["hits %d" % len(hits)]
            answer.extend("%s %s" % (key, bytes(value).hex()) for key, value in hits.items())
            print("\n".join(answer), flush=True)
        elif len(command) == 2 and command[0] == "run":
            budget = int(command[1]) * 1000
            calls = 0
            start = time.perf_counter_ns()
            deadline = start + budget
            while True:
                if len(read(keys)) != expected:
                    raise SystemExit("%s: a call returned fewer hits than keys" % library)
                calls += 1
                now = time.perf_counter_ns()
                if now >= deadline:
                    break
            print("done %d %d" % (calls, now - start), flush=True)
        else:
            raise SystemExit("unknown command %r" % line)


if __name__ == "__main__":
    main()
