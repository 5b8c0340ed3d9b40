import Platform

/// Answers with the request body unchanged (Content-Type copied from the request, default application/json).
public struct EchoApp: SwiftApp {
    public static let name = "echo"
    public init() {}

    public func handle(_ request: AppRequest) async throws -> AppResponse {
        let type = request.header("content-type") ?? "application/json"
        return AppResponse(status: 200, headers: [("Content-Type", type)], body: request.body.isEmpty ? Array("{}".utf8) : request.body)
    }
}
