process CFRNA_SIMULATE {
    tag "n=${n_samples}"
    label 'process_single'
    conda "${moduleDir}/environment.yml"

    input:
    val n_samples          // integer: number of samples
    val reads_per_sample   // integer: reads (pairs) per sample
    val seed               // integer: random seed

    output:
    path "cohort"                          , emit: cohort
    path "cohort/samplesheet.csv"          , emit: samplesheet
    path "cohort/contrasts.csv"            , emit: contrasts
    path "cohort/genome.fa"                , emit: fasta
    path "cohort/genes.gtf"                , emit: gtf
    path "versions.yml"                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna-simulate \\
        --outdir cohort \\
        --samples ${n_samples} \\
        --reads-per-sample ${reads_per_sample} \\
        --seed ${seed} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-simulate --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p cohort/fastq
    touch cohort/samplesheet.csv cohort/contrasts.csv cohort/genome.fa cohort/genes.gtf
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
