import NIOCore

/// One call of a lambda, as the event layer hands it to the lambda layer.
public struct Invocation: Sendable {
    public var requestID: String
    public var lambda: String
    public var method: String
    /// Path below `/run/NAME`, starting with "/".
    public var path: String
    public var query: String
    public var headers: [[String]]
    public var body: ByteBuffer

    public init(requestID: String, lambda: String, method: String, path: String, query: String, headers: [[String]], body: ByteBuffer) {
        self.requestID = requestID
        self.lambda = lambda
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// What a completed invocation returns: the handler's response plus the accounting the worker reports in headers.
public struct InvocationResult: Sendable {
    public var response: WireResponse
    public var cold: Bool
    public var initMs: Double
    public var runMs: Double
    public var billedMs: Double
    public var memoryMB: Int
    public var sandboxID: String
}

/// Why an invocation did not produce a handler response. Each case maps to one HTTP status.
public enum InvocationError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidName(String, reason: String)
    case notFound(String)
    case methodNotAllowed(method: String, allowed: [String])
    case bodyTooLarge(limit: Int)
    case queueFull(limit: Int)
    case lambdaInvalid(String)
    case insufficientMemory(neededMB: Int, poolMB: Int)
    case startFailed(String)
    case timedOut(seconds: Double)
    case sandboxDied(String)
    case shuttingDown

    public var status: Int {
        switch self {
        case .invalidName: return 400
        case .notFound: return 404
        case .methodNotAllowed: return 405
        case .bodyTooLarge: return 413
        case .queueFull: return 429
        case .lambdaInvalid: return 500
        case .insufficientMemory: return 503
        case .startFailed: return 502
        case .timedOut: return 504
        case .sandboxDied: return 502
        case .shuttingDown: return 503
        }
    }

    public var description: String {
        switch self {
        case .invalidName(let name, let reason): return "invalid lambda name \"\(name)\": \(reason)"
        case .notFound(let name): return "no lambda named \"\(name)\" in the registry"
        case .methodNotAllowed(let method, let allowed):
            return "method \(method) is not allowed by ol.yaml; allowed: \(allowed.joined(separator: ", "))"
        case .bodyTooLarge(let limit): return "request body larger than the limit of \(limit) bytes"
        case .queueFull(let limit): return "too many requests waiting for this lambda (queue limit \(limit))"
        case .lambdaInvalid(let message): return message
        case .insufficientMemory(let needed, let pool):
            return "the lambda's memory limit of \(needed) MB exceeds the worker's memory pool of \(pool) MB"
        case .startFailed(let why): return "sandbox failed to start: \(why)"
        case .timedOut(let seconds): return "handler exceeded its timeout of \(SandboxError.format(seconds)) s; the sandbox was killed"
        case .sandboxDied(let cause): return "sandbox died: \(cause)"
        case .shuttingDown: return "the worker is shutting down"
        }
    }
}
