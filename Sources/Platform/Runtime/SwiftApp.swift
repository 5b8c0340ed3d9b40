/// A request as a built-in Swift app sees it.
public struct AppRequest: Sendable {
    public var method: String
    /// Path below `/run/NAME`, starting with "/".
    public var path: String
    /// Raw query string without "?".
    public var query: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The first header with this name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A built-in app's answer: status, headers and body go back to the HTTP client unchanged.
public struct AppResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int = 200, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The contract of built-in Swift lambdas (Sources/Apps). Each app runs in its own sandbox,
/// hosted by the swiftlet binary re-executed in its hidden runtime mode.
public protocol SwiftApp: Sendable {
    /// The lambda name it is listed under in the registry.
    static var name: String { get }
    init()
    func handle(_ request: AppRequest) async throws -> AppResponse
}

/// Thrown by an app to answer with a specific status and message (rendered as the worker's JSON error).
public struct AppError: Error, Sendable {
    public var status: Int
    public var message: String
    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
}
