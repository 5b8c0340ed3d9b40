import Platform

/// Does nothing and answers `null`: the floor of per-invocation overhead.
public struct NoopApp: SwiftApp {
    public static let name = "noop"
    public init() {}

    private static let body = Array("null".utf8)

    public func handle(_ request: AppRequest) async throws -> AppResponse {
        AppResponse(status: 200, headers: [("Content-Type", "application/json")], body: Self.body)
    }
}
