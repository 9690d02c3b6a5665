process CFRNA_PATHWAYS {
    tag "${meta.id}"
    label 'process_medium'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(de_files, stageAs: 'de_in/*'), path(samples)   // de_files: all files of CFRNA_DE; samples: samples.tsv
    path samplesheet                                                 // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path gtf                                                         // file: GTF (gene symbols)
    path gene_sets, stageAs: 'gene_sets/*'                           // files: GMT, or [] for the bundled sets

    output:
    tuple val(meta), path("pathways/signature_scores.tsv"), emit: scores
    tuple val(meta), path("pathways/*")                   , emit: files
    path "versions.yml"                                   , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def gmt = gene_sets ? "--gene-sets ${gene_sets.join(' ')}" : ''
    """
    cfrna-pathways \\
        --de-dir de_in \\
        --gtf ${gtf} \\
        ${gmt} \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --samples ${samples} \\
        --outdir pathways \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-pathways --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p pathways
    touch pathways/signature_scores.tsv
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
