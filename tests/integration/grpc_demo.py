#!/usr/bin/python3
"""A tiny gRPC service and client for test_grpc.sh, with no generated code.

Messages are raw bytes (identity serializers), methods are registered with
grpc's generic handlers:

  /demo.Echo/Unary         echoes; b"fail" aborts INVALID_ARGUMENT with a
                           message; b"sleep" answers after 3 s
  /demo.Echo/ServerStream  N messages "part-<i>" for a request b"<N>"
  /demo.Echo/ClientStream  the requests joined with b"+"
  /demo.Echo/Bidi          each request back, prefixed with b"echo:"
  /demo.Admin/Secret       echoes (the test's policy denies it)

  grpc_demo.py serve PORT LOG   serves on 127.0.0.1:PORT, one line per call in LOG
  grpc_demo.py call TARGET CASE prints "<CODE> <details or result>"
"""
import hashlib
import sys
import time
from concurrent import futures

import grpc

MAX = 16 * 1024 * 1024
OPTIONS = [("grpc.max_receive_message_length", MAX), ("grpc.max_send_message_length", MAX)]


def serve(port, log_path):
    log = open(log_path, "a", buffering=1)

    def note(name):
        log.write(name + "\n")

    def unary(req, ctx):
        note("Unary")
        if req == b"fail":
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input: fail")
        if req == b"sleep":
            time.sleep(3)
        return req

    def server_stream(req, ctx):
        note("ServerStream")
        for i in range(int(req)):
            yield b"part-%d" % i

    def client_stream(it, ctx):
        note("ClientStream")
        return b"+".join(it)

    def bidi(it, ctx):
        note("Bidi")
        for m in it:
            yield b"echo:" + m

    def secret(req, ctx):
        note("Secret")
        return req

    echo = grpc.method_handlers_generic_handler("demo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    })
    admin = grpc.method_handlers_generic_handler("demo.Admin", {
        "Secret": grpc.unary_unary_rpc_method_handler(secret),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=OPTIONS)
    server.add_generic_rpc_handlers((echo, admin))
    server.add_insecure_port("127.0.0.1:%s" % port)
    server.start()
    server.wait_for_termination()


def call(target, case):
    ch = grpc.insecure_channel(target, options=OPTIONS)
    unary = ch.unary_unary("/demo.Echo/Unary")
    try:
        if case == "unary":
            out = unary(b"hello", timeout=10)
        elif case == "server_stream":
            out = b",".join(ch.unary_stream("/demo.Echo/ServerStream")(b"5", timeout=10))
        elif case == "client_stream":
            out = ch.stream_unary("/demo.Echo/ClientStream")(iter([b"a", b"b", b"c"]), timeout=10)
        elif case == "bidi":
            out = b",".join(ch.stream_stream("/demo.Echo/Bidi")(iter([b"1", b"2", b"3", b"4"]),
                                                                timeout=10))
        elif case == "error":
            out = unary(b"fail", timeout=10)
        elif case == "deadline":
            out = unary(b"sleep", timeout=0.5)
        elif case == "big":
            msg = bytes(range(256)) * (6 * 1024 * 1024 // 256)
            res = unary(msg, timeout=30)
            out = b"same" if hashlib.sha256(res).digest() == hashlib.sha256(msg).digest() else b"differ"
        elif case == "denied":
            out = ch.unary_unary("/demo.Admin/Secret")(b"x", timeout=10)
        else:
            raise SystemExit("unknown case " + case)
        print("OK " + out.decode())
    except grpc.RpcError as e:
        print("%s %s" % (e.code().name, e.details()))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        call(sys.argv[2], sys.argv[3])
