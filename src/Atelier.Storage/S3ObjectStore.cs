using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Atelier.Storage;

/// <summary>Objects in one bucket of an S3-compatible server, through the AWS SDK for .NET.</summary>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly TimeProvider _clock;

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
        _client = new AmazonS3Client(new BasicAWSCredentials(options.S3AccessKey ?? "", options.S3SecretKey ?? ""), config);
        _bucket = options.S3Bucket;
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

    public Task CopyAsync(string fromKey, string toKey, CancellationToken ct) =>
        _client.CopyObjectAsync(_bucket, ObjectKeys.Check(fromKey), _bucket, ObjectKeys.Check(toKey), ct);

    public Task DeleteAsync(string key, CancellationToken ct) => _client.DeleteObjectAsync(_bucket, ObjectKeys.Check(key), ct);

    public Uri? PresignPut(string key, TimeSpan lifetime) =>
        new(_client.GetPreSignedURL(new GetPreSignedUrlRequest
        {
            BucketName = _bucket, Key = ObjectKeys.Check(key), Verb = HttpVerb.PUT, Expires = _clock.GetUtcNow().UtcDateTime.Add(lifetime),
            Protocol = _client.Config.ServiceURL.StartsWith("https", StringComparison.OrdinalIgnoreCase) ? Protocol.HTTPS : Protocol.HTTP,
        }));

    public void Dispose() => _client.Dispose();
}
