/// Python lambdas used by the end-to-end tests (OpenLambda layout: f.py with def f(event), optional ol.yaml).
enum TestLambdas {
    static let echo = ["f.py": "def f(event):\n    return event\n"]
    static let raises = ["f.py": "def helper():\n    raise ValueError(\"boom\")\n\ndef f(event):\n    helper()\n"]
    static let sleeper = [
        "f.py": "import time\n\ndef f(event):\n    time.sleep(event.get(\"s\", 0))\n    return \"slept\"\n",
        "ol.yaml": "limits:\n  timeout_s: 1\n",
    ]
    static let hog = [
        "f.py": "def f(event):\n    if event.get(\"small\"):\n        return \"ok\"\n    chunks = []\n    while True:\n        chunks.append(bytearray(4 * 1024 * 1024))\n",
        "ol.yaml": "limits:\n  memory_mb: 64\n",
    ]
    static let forkBomb = [
        "f.py": """
        import os, time

        def f(event):
            forked, failed, children = 0, 0, []
            for _ in range(200):
                try:
                    pid = os.fork()
                except OSError:
                    failed += 1
                    continue
                if pid == 0:
                    time.sleep(5)
                    os._exit(0)
                forked += 1
                children.append(pid)
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            return {"forked": forked, "failed": failed}

        """,
        "ol.yaml": "limits:\n  procs: 16\n",
    ]
    static let getOnly = [
        "f.py": "def f(event):\n    return \"got\"\n",
        "ol.yaml": "triggers:\n  http:\n    - method: GET\n",
    ]
    static let fresh = [
        "f.py": "import os\n\ndef f(event):\n    return os.environ.get(\"SWIFTLET_SANDBOX\")\n",
        "ol.yaml": "reuse-sandbox: false\nenvironment:\n  GREETING: hi\n",
    ]
    static let environment = [
        "f.py": "import os\n\ndef f(event):\n    return os.environ.get(\"GREETING\")\n",
        "ol.yaml": "environment:\n  GREETING: hello\n",
    ]
    static let probe = [
        "f.py": """
        import os, socket

        def attempt(action):
            try:
                action()
                return True
            except Exception:
                return False

        def f(event):
            def read_planted():
                open(event["planted"]).read()
            def connect():
                socket.create_connection(("127.0.0.1", event["port"]), timeout=1).close()
            def write_handler():
                open("/handler/written", "w").write("x")
            def write_tmp():
                open("/tmp/written", "w").write("x")
            def write_scratch():
                open("/scratch/written", "w").write("x")
            return {
                "pid": os.getpid(),
                "uid": os.getuid(),
                "hostname": socket.gethostname(),
                "read_planted": attempt(read_planted),
                "connected": attempt(connect),
                "wrote_handler": attempt(write_handler),
                "wrote_tmp": attempt(write_tmp),
                "wrote_scratch": attempt(write_scratch),
                "environment": sorted(os.environ.keys()),
                "batch_scheduling": os.sched_getscheduler(0) == os.SCHED_BATCH,
            }

        """,
        "ol.yaml": "limits:\n  memory_mb: 96\n  procs: 24\n",
    ]
}
