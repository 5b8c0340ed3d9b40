import Foundation
import GRDB

/// Runs, requests and samples in SQLite (WAL; each batch is one transaction, so a killed run keeps every committed batch).
public final class ResultsDatabase: Sendable {
    public let path: String
    let pool: DatabasePool

    /// Opens (creating directories and the file if needed) and migrates to the latest schema.
    public init(path: String) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ResultsError.open(path: path, "cannot create directory \(directory)")
        }
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator().migrate(pool)
            try markAbandonedRuns()
        } catch {
            throw ResultsError.open(path: path, "\(error)")
        }
    }

    /// Versioned schema. Never edit a registered migration; add a new one.
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        workload TEXT NOT NULL, workload_hash TEXT NOT NULL, parameters TEXT NOT NULL,
                        target TEXT NOT NULL, git_revision TEXT NOT NULL, swiftlet_version TEXT NOT NULL,
                        cpu_model TEXT NOT NULL, cores INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, kernel TEXT NOT NULL,
                        started REAL NOT NULL, ended REAL, status TEXT NOT NULL);
                    CREATE TABLE requests (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        seq INTEGER NOT NULL, lambda TEXT NOT NULL,
                        intended_ns INTEGER NOT NULL, sent_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
                        latency_ms REAL NOT NULL, status INTEGER NOT NULL, bytes INTEGER NOT NULL, error TEXT NOT NULL,
                        cold INTEGER, init_ms REAL, run_ms REAL, billed_ms REAL, sandbox_id TEXT, worker TEXT);
                    CREATE TABLE samples (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        t_ns INTEGER NOT NULL, lambda TEXT NOT NULL,
                        running INTEGER NOT NULL, idle INTEGER NOT NULL, paused INTEGER NOT NULL, starting INTEGER NOT NULL,
                        queued INTEGER NOT NULL, created INTEGER NOT NULL, destroyed INTEGER NOT NULL,
                        memory_reserved_mb INTEGER NOT NULL);
                    """)
        }
        // Run notes, warm-up flag on requests, and lookup indexes.
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
                    ALTER TABLE requests ADD COLUMN warmup INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX requests_by_run ON requests(run_id, seq);
                    CREATE INDEX samples_by_run ON samples(run_id, t_ns);
                    """)
        }
        // Which process writes a run, so a run whose process died (SIGKILL, power loss) can be told from a live one.
        migrator.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        }
        return migrator
    }

    /// Marks `running` runs whose writing process is gone as `aborted` (ended at their last recorded request).
    /// Only runs written on this host are judged; a run without an owner (older databases) is left alone.
    func markAbandonedRuns() throws {
        let host = RunOwner.hostName()
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, owner, started FROM runs WHERE status = 'running' AND owner != ''")
            for row in rows {
                let owner: String = row["owner"]
                guard let parsed = RunOwner(owner), parsed.host == host, !parsed.isAlive else { continue }
                let id: Int64 = row["id"]
                let started: Double = row["started"]
                let lastEnd = try Int64.fetchOne(db, sql: "SELECT MAX(end_ns) FROM requests WHERE run_id = ?", arguments: [id])
                let ended = started + Double(lastEnd ?? 0) / 1e9
                try db.execute(
                    sql: """
                        UPDATE runs SET status = 'aborted', ended = ?,
                            notes = CASE WHEN notes = '' THEN ? ELSE notes || '; ' || ? END
                        WHERE id = ?
                        """,
                    arguments: [ended, RunOwner.abandonedNote, RunOwner.abandonedNote, id])
            }
        }
    }

    /// Applied migration identifiers, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator().appliedIdentifiers(db).sorted() }
    }

    // MARK: Runs

    @discardableResult
    public func createRun(_ run: RunRecord) throws -> Int64 {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO runs (workload, workload_hash, parameters, target, git_revision, swiftlet_version,
                        cpu_model, cores, memory_bytes, kernel, started, ended, status, notes, owner)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    run.workload, run.workloadHash, run.parameters, run.target, run.gitRevision, run.swiftletVersion,
                    run.cpuModel, run.cores, run.memoryBytes, run.kernel, run.started, run.ended, run.status, run.notes,
                    RunOwner.current.description,
                ])
            return db.lastInsertedRowID
        }
    }

    /// Sets the final status ("complete", "aborted", "failed"), end time and, when given, notes.
    public func finishRun(id: Int64, status: String, ended: Double, notes: String? = nil) throws {
        try pool.write { db in
            if let notes {
                try db.execute(
                    sql: "UPDATE runs SET status = ?, ended = ?, notes = ? WHERE id = ?",
                    arguments: [status, ended, notes, id])
            } else {
                try db.execute(sql: "UPDATE runs SET status = ?, ended = ? WHERE id = ?", arguments: [status, ended, id])
            }
            if db.changesCount == 0 { throw ResultsError.noSuchRun(id) }
        }
    }

    /// Replaces the recorded parameters (e.g. with a model's resolved parameters once known).
    public func setParameters(runID: Int64, parameters: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE runs SET parameters = ? WHERE id = ?", arguments: [parameters, runID])
            if db.changesCount == 0 { throw ResultsError.noSuchRun(runID) }
        }
    }

    public func runs() throws -> [RunRecord] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY id").map(Self.runRecord) }
    }

    public func run(id: Int64) throws -> RunRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]).map(Self.runRecord)
        }
    }

    static func runRecord(_ row: Row) -> RunRecord {
        RunRecord(
            id: row["id"], workload: row["workload"], workloadHash: row["workload_hash"], parameters: row["parameters"],
            target: row["target"], gitRevision: row["git_revision"], swiftletVersion: row["swiftlet_version"],
            cpuModel: row["cpu_model"], cores: row["cores"], memoryBytes: row["memory_bytes"], kernel: row["kernel"],
            started: row["started"], ended: row["ended"], status: row["status"], notes: row["notes"])
    }

    // MARK: Requests and samples

    /// Inserts the rows in one transaction.
    public func insert(requests: [RequestRow]) throws {
        guard !requests.isEmpty else { return }
        try pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO requests (run_id, seq, lambda, intended_ns, sent_ns, end_ns, latency_ms, status, bytes, error,
                        cold, init_ms, run_ms, billed_ms, sandbox_id, worker, warmup)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for r in requests {
                try statement.execute(arguments: [
                    r.runID, r.seq, r.lambda, r.intendedNs, r.sentNs, r.endNs, r.latencyMs, r.status, r.bytes, r.error,
                    r.cold, r.initMs, r.runMs, r.billedMs, r.sandboxID, r.worker, r.warmup,
                ])
            }
        }
    }

    public func insert(samples: [SampleRow]) throws {
        guard !samples.isEmpty else { return }
        try pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO samples (run_id, t_ns, lambda, running, idle, paused, starting, queued, created, destroyed,
                        memory_reserved_mb)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for s in samples {
                try statement.execute(arguments: [
                    s.runID, s.tNs, s.lambda, s.running, s.idle, s.paused, s.starting, s.queued, s.created, s.destroyed,
                    s.memoryReservedMB,
                ])
            }
        }
    }

    /// Requests of a run ordered by seq.
    public func requests(runID: Int64) throws -> [RequestRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM requests WHERE run_id = ? ORDER BY seq", arguments: [runID]).map { row in
                RequestRow(
                    runID: row["run_id"], seq: row["seq"], lambda: row["lambda"], intendedNs: row["intended_ns"],
                    sentNs: row["sent_ns"], endNs: row["end_ns"], latencyMs: row["latency_ms"], status: row["status"],
                    bytes: row["bytes"], error: row["error"], cold: row["cold"], initMs: row["init_ms"],
                    runMs: row["run_ms"], billedMs: row["billed_ms"], sandboxID: row["sandbox_id"], worker: row["worker"],
                    warmup: row["warmup"])
            }
        }
    }

    /// Samples of a run ordered by time, then lambda.
    public func samples(runID: Int64) throws -> [SampleRow] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM samples WHERE run_id = ? ORDER BY t_ns, lambda", arguments: [runID]
            ).map { row in
                SampleRow(
                    runID: row["run_id"], tNs: row["t_ns"], lambda: row["lambda"], running: row["running"],
                    idle: row["idle"], paused: row["paused"], starting: row["starting"], queued: row["queued"],
                    created: row["created"], destroyed: row["destroyed"], memoryReservedMB: row["memory_reserved_mb"])
            }
        }
    }

    /// Number of request rows of a run (cheap, for progress and tests).
    public func requestCount(runID: Int64) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM requests WHERE run_id = ?", arguments: [runID]) ?? 0
        }
    }
}

public enum ResultsError: Error, CustomStringConvertible, LocalizedError {
    case open(path: String, String)
    case noSuchRun(Int64)

    public var description: String {
        switch self {
        case .open(let path, let reason): return "cannot open results database \(path): \(reason)"
        case .noSuchRun(let id): return "no run with id \(id) in the results database"
        }
    }

    public var errorDescription: String? { description }
}
