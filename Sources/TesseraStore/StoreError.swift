/// The only errors a store reports. Backends translate their own failures into these.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound
    case alreadyExists
    /// The write conflicts with the current state (a concurrent change, a broken invariant).
    case conflict(String)
    /// The backend cannot be reached or is failing; the caller answers 503, never a partial success.
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound: "not found"
        case .alreadyExists: "already exists"
        case .conflict(let why): "conflict: \(why)"
        case .unavailable(let why): "store unavailable: \(why)"
        }
    }
}
