process CFRNA_COUNT {
    tag "${meta.id}"
    label 'process_low'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(bam), path(bai), path(align_json)   // align_json: strandedness.used is counted
    path gtf                                                   // file: GTF

    output:
    tuple val(meta), path("*.counts.tsv")                  , emit: counts
    tuple val(meta), path("*.counts.tsv.summary")          , emit: summary
    tuple val(meta), path("*.counts.tsv.stats.json")       , emit: stats
    path "versions.yml"                                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def paired = meta.single_end ? '' : '--paired'
    """
    cfrna-count \\
        --bam ${bam} \\
        --gtf ${gtf} \\
        --strandedness-from ${align_json} \\
        --sample ${prefix} \\
        ${paired} \\
        --out ${prefix}.counts.tsv \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-count --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.counts.tsv ${prefix}.counts.tsv.summary
    echo '{}' > ${prefix}.counts.tsv.stats.json
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
