namespace NewBie.Pipeline.Tokenizers;

/// <summary>The <c>model</c> of a tokenizer.json: turns one pre-tokenized word into ids.</summary>
internal interface ITokenModel
{
    void Tokenize(string word, List<int> output);

    bool TryGetId(string token, out int id);

    /// <summary>The largest id of the model's vocabulary.</summary>
    int MaxId { get; }
}
