import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The process that writes a run: host name, pid and the pid's start time (so a recycled pid is not mistaken for it).
/// Stored as `host|pid|start` in `runs.owner`.
struct RunOwner: Equatable, CustomStringConvertible {
    var host: String
    var pid: Int32
    /// Field 22 of /proc/PID/stat: clock ticks after boot at which the process started.
    var startTicks: UInt64

    static let abandonedNote = "aborted: the process writing the run ended without finishing it (killed?)"

    static let current = RunOwner(host: hostName(), pid: getpid(), startTicks: startTicks(of: getpid()) ?? 0)

    init(host: String, pid: Int32, startTicks: UInt64) {
        self.host = host
        self.pid = pid
        self.startTicks = startTicks
    }

    init?(_ text: String) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 3, let pid = Int32(parts[1]), let start = UInt64(parts[2]) else { return nil }
        self.init(host: String(parts[0]), pid: pid, startTicks: start)
    }

    var description: String { "\(host)|\(pid)|\(startTicks)" }

    /// The same process still runs (same pid and start time).
    var isAlive: Bool {
        guard pid > 0, let ticks = Self.startTicks(of: pid) else { return false }
        return ticks == startTicks
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }

    static func startTicks(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After the command name: state is field 3, starttime is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
