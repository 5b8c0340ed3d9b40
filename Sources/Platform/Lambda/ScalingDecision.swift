/// How many new sandboxes a lambda should start now. Pure, so the policy is unit-tested and reused by models.
///
/// Instance count follows queued work: every waiting request that no starting sandbox will serve gets a new
/// sandbox, up to the per-lambda maximum and what the memory pool admits.
public enum ScalingDecision {
    public static func sandboxesToStart(
        queued: Int, starting: Int, busy: Int, idle: Int, maxInstances: Int, memoryAvailableMB: Int, sandboxMemoryMB: Int
    ) -> Int {
        guard queued > 0, idle == 0 else { return 0 }
        let wanted = queued - starting
        let room = maxInstances - (starting + busy + idle)
        let memoryRoom = sandboxMemoryMB > 0 ? memoryAvailableMB / sandboxMemoryMB : Int.max
        return max(0, min(wanted, room, memoryRoom))
    }
}
