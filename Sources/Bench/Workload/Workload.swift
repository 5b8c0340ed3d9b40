// The in-memory form of a workload file (`Workloads/*.yaml`, schema in `Workloads/README.md`).
// Parsed by `WorkloadParser`; consumed alike by the load generator (real runs) and the models (simulated runs).

public struct Workload: Sendable, Equatable {
    /// File name without extension, e.g. "elasticity".
    public var name: String
    public var targets: [WorkloadTarget]
    public var arrival: ArrivalModel
    /// Seconds of measured load after the warm-up.
    public var durationSeconds: Double
    /// Seconds at the start that are recorded but excluded from summaries.
    public var warmupSeconds: Double
    public var seed: UInt64
    /// Raw model parameter sections (`model: {container: ..., lambda: ...}`), decoded by Model/.
    public var modelParameters: [String: ModelParameterValue]

    public init(
        name: String, targets: [WorkloadTarget], arrival: ArrivalModel, durationSeconds: Double,
        warmupSeconds: Double = 0, seed: UInt64 = 1, modelParameters: [String: ModelParameterValue] = [:]
    ) {
        self.name = name
        self.targets = targets
        self.arrival = arrival
        self.durationSeconds = durationSeconds
        self.warmupSeconds = warmupSeconds
        self.seed = seed
        self.modelParameters = modelParameters
    }
}

/// One lambda the workload calls, chosen per request with probability weight / sum(weights).
public struct WorkloadTarget: Sendable, Equatable {
    public var lambda: String
    public var weight: Double
    /// HTTP method, default POST.
    public var method: String
    /// Sub-path below /run/NAME, default "".
    public var path: String
    /// Request body template (JSON text); `{{seq}}` and `{{client}}` are substituted per request.
    public var payload: String

    public init(lambda: String, weight: Double = 1, method: String = "POST", path: String = "", payload: String = "{}") {
        self.lambda = lambda
        self.weight = weight
        self.method = method
        self.path = path
        self.payload = payload
    }
}

public enum ArrivalModel: Sendable, Equatable {
    /// N clients, each sends, waits for the response, thinks, sends again.
    case closed(clients: Int, thinkSeconds: Double)
    /// Requests at `rate` per second, independent of responses.
    case open(rate: Double, process: ArrivalProcess)
    /// Consecutive phases, each open (rate, optionally ramping to `toRate`) or closed (clients).
    case phases([Phase])
    /// Azure Functions 2019 per-minute invocation counts, expanded to arrivals with the workload's seed.
    case trace(TraceSpec)
}

public enum ArrivalProcess: String, Sendable, Equatable {
    case poisson, constant
}

public struct Phase: Sendable, Equatable {
    public var durationSeconds: Double
    /// Open-loop rate (per second) at the start of the phase; nil for a closed phase.
    public var rate: Double?
    /// Open-loop rate at the end of the phase (linear ramp); nil keeps `rate`.
    public var toRate: Double?
    /// Closed-loop clients during the phase; nil for an open phase.
    public var clients: Int?
    public var thinkSeconds: Double
    public var process: ArrivalProcess

    public init(
        durationSeconds: Double, rate: Double? = nil, toRate: Double? = nil, clients: Int? = nil,
        thinkSeconds: Double = 0, process: ArrivalProcess = .poisson
    ) {
        self.durationSeconds = durationSeconds
        self.rate = rate
        self.toRate = toRate
        self.clients = clients
        self.thinkSeconds = thinkSeconds
        self.process = process
    }
}

public struct TraceSpec: Sendable, Equatable {
    /// CSV path (relative to the workload file) in the Azure Functions 2019 invocations-per-function-per-minute format.
    public var file: String
    /// Rows (functions) to replay; empty = all. Matched against HashFunction.
    public var functions: [String]
    /// Multiplies every count (to scale a trace to this machine).
    public var scale: Double
    /// First minute column to replay (1-based, as in the CSV header "1".."1440").
    public var startMinute: Int

    public init(file: String, functions: [String] = [], scale: Double = 1, startMinute: Int = 1) {
        self.file = file
        self.functions = functions
        self.scale = scale
        self.startMinute = startMinute
    }
}

/// A YAML-like value kept raw for the model sections (decoded by Model/, which knows their fields).
public indirect enum ModelParameterValue: Sendable, Equatable {
    case number(Double)
    case string(String)
    case bool(Bool)
    case list([ModelParameterValue])
    case mapping([String: ModelParameterValue])
}
