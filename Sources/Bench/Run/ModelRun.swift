/// Simulated runs: the same rows as a real run, produced by the discrete-event models.
enum ModelRun {
    static func simulate(
        _ workload: Workload, kind: String, runID: Int64, baseDirectory: String, modelsDirectory: String,
        coldRows: [RequestRow]
    ) throws -> SimulationResult {
        guard let model = ModelKind(rawValue: kind) else {
            throw BenchRunError(message: "unknown model '\(kind)' (expected container or lambda)")
        }
        return try Simulation.run(
            workload, model: model, runID: runID, baseDirectory: baseDirectory, modelsDirectory: modelsDirectory,
            coldRows: coldRows)
    }
}
