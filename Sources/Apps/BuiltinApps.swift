import Platform

/// Every built-in Swift lambda, listed by the registry beside folder lambdas.
public enum BuiltinApps {
    public static let all: [any SwiftApp.Type] = [EchoApp.self, NoopApp.self, SpinApp.self]

    /// The app type registered under `name`, if any.
    public static func named(_ name: String) -> (any SwiftApp.Type)? {
        all.first { $0.name == name }
    }
}
