using Atelier.Contracts.Workers;

namespace Atelier.Core.Jobs;

/// <summary>
/// Hands a job's result from the worker's calls to a synchronous caller (<c>/sdapi/v1/txt2img</c>) waiting for it on the
/// same replica, so the caller need not read back what this process has just written: the images' bytes as the upload
/// stored them, the result as the completion committed it. Only jobs a caller here expects are kept (see
/// <see cref="Expect"/>), and only what was stored and committed first; anything else, such as a completion that
/// another replica took, is read from the database and the object store as before. An image uploaded twice under one
/// key is not kept (the store holds whichever write came last). The images held stay under <see cref="MaxHeldBytes"/>
/// in all (beyond that they are not kept, and are read from the store).
/// </summary>
public sealed class JobHandoff
{
    /// <summary>Image bytes held for waiting callers at most, over all of them.</summary>
    public const long MaxHeldBytes = 64L << 20;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Expectation> _expected = new(StringComparer.Ordinal);
    private long _held;

    /// <summary>
    /// An expectation of a job not yet queued: <see cref="Expectation.Start"/> names the job (before any worker can hear
    /// of it), and from then on what the workers' calls on this replica hand over for it is kept, until disposed.
    /// </summary>
    public Expectation Expect() => new(this);

    /// <summary>An image of the job, stored under <paramref name="key"/>: kept when a caller here expects the job and there is room.</summary>
    public void OfferImage(string jobId, string key, byte[] bytes)
    {
        lock (_gate)
        {
            if (!_expected.TryGetValue(jobId, out var expectation) || !expectation.Offered.Add(key))
            {
                // Not expected; or a second upload of the key, and the store keeps whichever write came last: none is kept.
                if (expectation?.Images.Remove(key, out var first) == true)
                {
                    _held -= first.Length;
                }

                return;
            }

            if (_held + bytes.Length <= MaxHeldBytes)
            {
                expectation.Images[key] = bytes;
                _held += bytes.Length;
            }
        }
    }

    /// <summary>The job's committed result (a success): kept when a caller here expects the job.</summary>
    public void OfferResult(string jobId, WorkerResult result)
    {
        lock (_gate)
        {
            if (_expected.TryGetValue(jobId, out var expectation))
            {
                expectation.Result = result;
            }
        }
    }

    private void Forget(Expectation expectation)
    {
        lock (_gate)
        {
            if (expectation.JobId is { } jobId && _expected.TryGetValue(jobId, out var current) && ReferenceEquals(current, expectation))
            {
                _expected.Remove(jobId);
            }

            _held -= expectation.Images.Values.Sum(b => (long)b.Length);
            expectation.Images.Clear();
        }
    }

    /// <summary>One caller's expectation of one job, from <see cref="Expect"/>.</summary>
    public sealed class Expectation(JobHandoff owner) : IDisposable
    {
        internal string? JobId { get; private set; }

        internal Dictionary<string, byte[]> Images { get; } = new(StringComparer.Ordinal);

        /// <summary>The keys uploaded so far (a key uploaded twice is not kept).</summary>
        internal HashSet<string> Offered { get; } = new(StringComparer.Ordinal);

        /// <summary>Names the job expected (once); call it when the job is committed, before a worker is told of it.</summary>
        public void Start(string jobId)
        {
            lock (owner._gate)
            {
                if (JobId is not null)
                {
                    throw new InvalidOperationException("This expectation has its job already.");
                }

                JobId = jobId;
                owner._expected[jobId] = this;
            }
        }

        private WorkerResult? _result;

        /// <summary>The result the job succeeded with, once its completion committed on this replica; else null.</summary>
        public WorkerResult? Result
        {
            get
            {
                lock (owner._gate)
                {
                    return _result;
                }
            }

            internal set => _result = value; // under the owner's lock
        }

        /// <summary>The bytes of the image stored under <paramref name="key"/>, when its upload came here; else null.</summary>
        public byte[]? ImageOf(string key)
        {
            lock (owner._gate)
            {
                return Images.GetValueOrDefault(key);
            }
        }

        public void Dispose() => owner.Forget(this);
    }
}
