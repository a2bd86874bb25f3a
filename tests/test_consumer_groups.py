"""Consumer groups under real concurrency: several consumers read a stream through
XREADGROUP over their own connections; some crash (disconnect without XACK); a reclaimer
takes their pending entries with XAUTOCLAIM. Every entry is processed, and acknowledged
exactly once."""

import random
import threading
import time

import resp

ENTRIES = 2000


def test_crashing_consumers_are_reclaimed_by_xautoclaim(redlite_server):
    port = redlite_server[0]
    admin = resp.Conn(port)
    admin.command("SELECT", "7")
    admin.command("DEL", "jobs")
    assert admin.command("XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM") == "OK"
    processed = {}
    reclaimed = []
    lock = threading.Lock()
    stop = threading.Event()

    def handle(conn, name, entries, crash_rate):
        for entry_id, _fields in entries:
            if random.random() < crash_rate:
                conn.close()  # crash: the entry stays pending, owned by this consumer
                return False
            with lock:
                processed[entry_id.decode()] = processed.get(entry_id.decode(), 0) + 1
            assert conn.command("XACK", "jobs", "workers", entry_id) == 1
        return True

    def consumer(n):
        rng = random.Random(n)
        name = f"c{n}"
        while not stop.is_set():
            conn = resp.Conn(port)
            conn.command("SELECT", "7")
            alive = True
            while alive and not stop.is_set():
                reply = conn.command("XREADGROUP", "GROUP", "workers", name, "COUNT", "5",
                                     "BLOCK", "100", "STREAMS", "jobs", ">")
                if reply is None:
                    continue
                entries = reply[0][1]
                alive = handle(conn, name, entries, crash_rate=0.05 if rng.random() < 0.5 else 0)

    def reclaimer():
        conn = resp.Conn(port)
        conn.command("SELECT", "7")
        cursor = "0-0"
        while not stop.is_set():
            next_cursor, entries, _deleted = conn.command(
                "XAUTOCLAIM", "jobs", "workers", "reclaimer", "200", cursor, "COUNT", "50")
            cursor = next_cursor.decode()
            with lock:
                reclaimed.extend(entries)
            handle(conn, "reclaimer", entries, crash_rate=0)
            time.sleep(0.05)

    threads = [threading.Thread(target=consumer, args=(n,), daemon=True) for n in range(4)]
    threads.append(threading.Thread(target=reclaimer, daemon=True))
    for t in threads:
        t.start()
    producer = resp.Conn(port)
    producer.command("SELECT", "7")
    ids = [producer.command("XADD", "jobs", "*", "n", str(i)).decode() for i in range(ENTRIES)]
    deadline = time.time() + 60
    while time.time() < deadline:
        summary = admin.command("XPENDING", "jobs", "workers")
        with lock:
            done = len(processed)
        if done == ENTRIES and summary[0] == 0:
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(5)
    with lock:
        assert sorted(processed) == sorted(ids), f"{len(processed)} of {ENTRIES} processed"
        assert all(n == 1 for n in processed.values()), "an entry was acknowledged twice"
    assert admin.command("XPENDING", "jobs", "workers")[0] == 0
    assert reclaimed, "no consumer crashed with pending entries: the test proved nothing"
