namespace Atelier.Contracts;

/// <summary>The links the API hands out in its answers, built in one place so that they follow the routes.</summary>
public static class ApiLinks
{
    /// <summary>A task (a job seen through the predict API).</summary>
    public static string Task(string taskId) => $"/api/v1/tasks/{Uri.EscapeDataString(taskId)}";

    /// <summary>One image of a task's result.</summary>
    public static string TaskImage(string taskId, int index) => $"{Task(taskId)}/images/{index}";

    /// <summary>A generated image's bytes, with its signed query.</summary>
    public static string ImageContent(string imageId, string signedQuery) => $"/api/v1/images/{Uri.EscapeDataString(imageId)}/content?{signedQuery}";

    /// <summary>Where an upload's bytes go, on this server.</summary>
    public static string UploadContent(string baseUrl, string uploadId) => $"{baseUrl.TrimEnd('/')}/api/v1/uploads/{Uri.EscapeDataString(uploadId)}/content";
}
