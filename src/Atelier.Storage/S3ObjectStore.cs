using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Atelier.Storage;

/// <summary>
/// Objects in one bucket of an S3-compatible server, through the AWS SDK for .NET. Objects past
/// <see cref="StorageOptions.S3MultipartThresholdBytes"/> are written and copied in parts (S3 takes at most 5 GiB in one
/// PUT or copy); a multipart write that fails is aborted, so that no parts are left to pay for.
/// </summary>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly TimeProvider _clock;
    private readonly long _threshold;
    private readonly long _partSize;

    public S3ObjectStore(StorageOptions options, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        var config = new AmazonS3Config
        {
            ServiceURL = options.S3ServiceUrl ?? throw new InvalidOperationException("Atelier:Storage:S3ServiceUrl is required for the s3 provider."),
            ForcePathStyle = options.S3ForcePathStyle,
            AuthenticationRegion = options.S3Region,
            // Only send checksums the operation requires: self-hosted servers rarely understand the newer trailers.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        // Keys configured: those. None: the SDK's default chain (environment variables, the shared profile, web identity
        // tokens as on EKS, the ECS task role, the EC2 instance role), resolved and refreshed by the SDK itself.
        _client = string.IsNullOrEmpty(options.S3AccessKey)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(options.S3AccessKey, options.S3SecretKey ?? ""), config);
        _bucket = options.S3Bucket;
        _threshold = options.S3MultipartThresholdBytes;
        _partSize = options.S3MultipartPartBytes;
    }

    public string Name => "s3";

    public async Task PutFileAsync(string key, string localPath, CancellationToken ct)
    {
        await using (var file = File.OpenRead(localPath))
        {
            await PutAsync(key, file, file.Length, ct);
        }

        File.Delete(localPath);
    }

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        if (length > _threshold)
        {
            await PutInPartsAsync(ObjectKeys.Check(key), content, length, ct);
            return;
        }

        var request = new PutObjectRequest { BucketName = _bucket, Key = ObjectKeys.Check(key), InputStream = content, AutoCloseStream = false, UseChunkEncoding = false };
        request.Headers.ContentLength = length;
        await _client.PutObjectAsync(request, ct);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        try
        {
            var response = await _client.GetObjectAsync(_bucket, ObjectKeys.Check(key), ct);
            return response.ResponseStream;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            throw new ObjectNotFoundException(key, e);
        }
    }

    public async Task<long?> SizeAsync(string key, CancellationToken ct)
    {
        try
        {
            var meta = await _client.GetObjectMetadataAsync(_bucket, ObjectKeys.Check(key), ct);
            return meta.ContentLength;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task CopyAsync(string fromKey, string toKey, CancellationToken ct)
    {
        var from = ObjectKeys.Check(fromKey);
        var to = ObjectKeys.Check(toKey);
        var size = await SizeAsync(from, ct) ?? throw new ObjectNotFoundException(fromKey, null);
        if (size > _threshold)
        {
            try
            {
                await CopyInPartsAsync(from, to, size, ct);
            }
            catch (AmazonS3Exception e) when (e.ErrorCode == "NotImplemented")
            {
                // A server without UploadPartCopy (some self-hosted ones): the bytes go through this process instead.
                await using var source = await OpenReadAsync(from, ct);
                await PutInPartsAsync(to, source, size, ct);
            }

            return;
        }

        await _client.CopyObjectAsync(_bucket, from, _bucket, to, ct);
    }

    /// <summary>A multipart upload: each part read into one buffer (parts go one at a time), then completed; aborted on any failure.</summary>
    private async Task PutInPartsAsync(string key, Stream content, long length, CancellationToken ct)
    {
        var partSize = PartSize(length);
        var buffer = new byte[partSize];
        await MultipartAsync(key, async (uploadId, etags) =>
        {
            long sent = 0;
            for (var number = 1; sent < length; number++)
            {
                var size = (int)Math.Min(partSize, length - sent);
                await content.ReadExactlyAsync(buffer.AsMemory(0, size), ct);
                using var part = new MemoryStream(buffer, 0, size, writable: false);
                var response = await _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _bucket, Key = key, UploadId = uploadId, PartNumber = number, PartSize = size, InputStream = part,
                    UseChunkEncoding = false,
                }, ct);
                etags.Add(new PartETag(number, response.ETag));
                sent += size;
            }
        }, ct);
    }

    /// <summary>A server-side copy in parts (a single copy is limited to 5 GiB as a PUT is).</summary>
    private async Task CopyInPartsAsync(string from, string to, long length, CancellationToken ct)
    {
        var partSize = PartSize(length);
        await MultipartAsync(to, async (uploadId, etags) =>
        {
            var number = 1;
            for (long first = 0; first < length; first += partSize, number++)
            {
                var response = await _client.CopyPartAsync(new CopyPartRequest
                {
                    SourceBucket = _bucket, SourceKey = from, DestinationBucket = _bucket, DestinationKey = to, UploadId = uploadId,
                    PartNumber = number, FirstByte = first, LastByte = Math.Min(first + partSize, length) - 1,
                }, ct);
                etags.Add(new PartETag(number, response.ETag));
            }
        }, ct);
    }

    private async Task MultipartAsync(string key, Func<string, List<PartETag>, Task> parts, CancellationToken ct)
    {
        var uploadId = (await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = key }, ct)).UploadId;
        try
        {
            var etags = new List<PartETag>();
            await parts(uploadId, etags);
            await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = uploadId, PartETags = etags }, ct);
        }
        catch
        {
            try
            {
                await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = uploadId }, CancellationToken.None);
            }
            catch (AmazonServiceException)
            {
                // The first failure is the one to report; a bucket lifecycle rule ends parts left behind.
            }

            throw;
        }
    }

    /// <summary>The configured part size, larger where the object would need more than S3's 10,000 parts.</summary>
    private long PartSize(long length) => Math.Max(_partSize, (length + MaxParts - 1) / MaxParts);

    private const int MaxParts = 10_000;

    public Task DeleteAsync(string key, CancellationToken ct) => _client.DeleteObjectAsync(_bucket, ObjectKeys.Check(key), ct);

    public Uri? PresignPut(string key, TimeSpan lifetime) =>
        new(_client.GetPreSignedURL(new GetPreSignedUrlRequest
        {
            BucketName = _bucket, Key = ObjectKeys.Check(key), Verb = HttpVerb.PUT, Expires = _clock.GetUtcNow().UtcDateTime.Add(lifetime), Protocol = Scheme,
        }));

    public async Task<PresignedParts?> PresignPartsAsync(string key, long length, TimeSpan lifetime, CancellationToken ct)
    {
        if (length <= _threshold)
        {
            return null;
        }

        ObjectKeys.Check(key);
        var partSize = PartSize(length);
        var uploadId = (await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = key }, ct)).UploadId;
        var expires = _clock.GetUtcNow().UtcDateTime.Add(lifetime);
        var count = (int)((length + partSize - 1) / partSize);
        var urls = new List<Uri>(count);
        for (var number = 1; number <= count; number++)
        {
            urls.Add(new Uri(_client.GetPreSignedURL(new GetPreSignedUrlRequest
            {
                BucketName = _bucket, Key = key, Verb = HttpVerb.PUT, Expires = expires, UploadId = uploadId, PartNumber = number, Protocol = Scheme,
            })));
        }

        return new PresignedParts(uploadId, partSize, urls);
    }

    public async Task CompletePartsAsync(string key, string uploadId, IReadOnlyList<UploadedPart> parts, CancellationToken ct)
    {
        try
        {
            await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = _bucket, Key = ObjectKeys.Check(key), UploadId = uploadId, PartETags = [.. parts.Select(p => new PartETag(p.Number, p.ETag))],
            }, ct);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode is "InvalidPart" or "InvalidPartOrder" or "EntityTooSmall" or "NoSuchUpload" or "MalformedXML")
        {
            throw new ObjectStoreRefusedException($"the object store refused the parts ({e.ErrorCode}): {e.Message}", e);
        }
    }

    public async Task AbortPartsAsync(string key, string uploadId, CancellationToken ct)
    {
        try
        {
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = ObjectKeys.Check(key), UploadId = uploadId }, ct);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchUpload")
        {
            // already completed or aborted
        }
    }

    private Protocol Scheme => _client.Config.ServiceURL.StartsWith("https", StringComparison.OrdinalIgnoreCase) ? Protocol.HTTPS : Protocol.HTTP;

    public void Dispose() => _client.Dispose();
}
