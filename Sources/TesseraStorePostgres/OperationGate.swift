import Synchronization
import TesseraStore

/// Counts the store calls under way so that `close()` can wait for them before it shuts the pool
/// down (shutting the pool down fails whatever is still running on it).
final class OperationGate: Sendable {
    private struct State {
        var running = 0
        var closing = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Throws `.unavailable` once `close()` has begun.
    func enter() throws(StoreError) {
        let open = state.withLock { state in
            guard !state.closing else { return false }
            state.running += 1
            return true
        }
        guard open else { throw StoreError.unavailable("the store is closed") }
    }

    func leave() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.closing, state.running == 0 else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Refuses new calls, then returns once every call under way has left.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state in
                state.closing = true
                if state.running == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

/// Runs `operation` and returns its result when it finishes within `timeout` (rethrowing its
/// error), or nil as soon as the timeout passes, cancelling it. Unlike a task group, it does not
/// wait for an operation that ignores cancellation.
func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
        let race = Race(continuation)
        let work = Task {
            do {
                race.finish(.success(try await operation()))
            } catch {
                race.finish(.failure(error))
            }
        }
        race.setTimer(
            Task {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                if race.finish(.success(nil)) { work.cancel() }
            })
    }
}

/// The continuation of `withTimeout`, resumed once by whichever side finishes first.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T?, any Error>?
        var timer: Task<Void, Never>?
    }

    private let state: Mutex<State>

    init(_ continuation: CheckedContinuation<T?, any Error>) {
        state = Mutex(State(continuation: continuation))
    }

    /// Resumes the caller unless the other side already did; true when this call did.
    @discardableResult
    func finish(_ result: Result<T?, any Error>) -> Bool {
        let (continuation, timer) = state.withLock { state in
            defer {
                state.continuation = nil
                state.timer = nil
            }
            return (state.continuation, state.timer)
        }
        timer?.cancel()
        continuation?.resume(with: result)
        return continuation != nil
    }

    func setTimer(_ timer: Task<Void, Never>) {
        let finished = state.withLock { state in
            if state.continuation == nil { return true }
            state.timer = timer
            return false
        }
        if finished { timer.cancel() }
    }
}
