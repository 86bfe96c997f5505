using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>
/// The calling API token's default checkpoint (what a generation without a model reference runs). A version named in
/// the request body that does not exist is <c>b_model_modelversionnotexist</c>.
/// </summary>
public sealed class CheckpointService(AtelierDb db, RequestContext ctx, ResolutionCache resolutions)
{
    public async Task<CheckpointConfigDto> SetCheckpointAsync(CheckpointConfigRequest req, CancellationToken ct)
    {
        var tokenId = TokenIdOfCaller();
        var versionId = req.ModelVersionId ?? throw AtelierException.InvalidInput("modelVersionId", "is required");
        var version = await db.ModelVersions.AsNoTracking().FirstOrDefaultAsync(v => v.Id == versionId, ct)
                      ?? throw new AtelierException(ErrorCatalog.b_model_modelversionnotexist, errCode: ErrCodes.ModelVersionNotFound, errMessage: versionId);
        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        if (model.Type is not ("checkpoint" or "onnx"))
        {
            throw AtelierException.InvalidInput("modelVersionId", $"is a {model.Type}, not a checkpoint");
        }

        await db.ApiTokens.Where(t => t.Id == tokenId).ExecuteUpdateAsync(u => u.SetProperty(t => t.CheckpointVersionId, version.Id), ct);
        resolutions.Clear();
        return new CheckpointConfigDto(version.Id, model.Id, model.Name, version.Name);
    }

    public async Task<CheckpointConfigDto> GetCheckpointAsync(CancellationToken ct)
    {
        var tokenId = TokenIdOfCaller();
        var versionId = await db.ApiTokens.AsNoTracking().Where(t => t.Id == tokenId).Select(t => t.CheckpointVersionId).FirstOrDefaultAsync(ct);
        var version = versionId is null ? null : await db.ModelVersions.AsNoTracking().FirstOrDefaultAsync(v => v.Id == versionId, ct);
        if (version is null)
        {
            throw new AtelierException(ErrorCatalog.p_token_checkpointversionnotfound, errCode: ErrCodes.NoCheckpoint,
                errMessage: versionId is null ? "the token has no default checkpoint" : $"its version {versionId} was deleted");
        }

        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        return new CheckpointConfigDto(version.Id, model.Id, model.Name, version.Name);
    }

    private string TokenIdOfCaller()
    {
        var caller = ctx.Caller!;
        return caller.Kind == CallerKind.Token
            ? caller.CredentialId
            : throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.NotAToken, errMessage: "a checkpoint config belongs to an API token");
    }
}
