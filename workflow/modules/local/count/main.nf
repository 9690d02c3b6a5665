process CFRNA_COUNT {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(bam), path(bai), path(align_json)   // align_json: its strandedness.used is counted
    tuple val(meta2), path(gtf)                                // reference annotation

    output:
    tuple val(meta), path("*.counts.tsv")           , emit: counts
    tuple val(meta), path("*.counts.tsv.summary")   , emit: summary
    tuple val(meta), path("*.counts.tsv.stats.json"), emit: stats
    tuple val(meta), path("*.counts.dedup.tsv")     , emit: dedup, optional: true   // with --dedup
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def paired = meta.single_end ? '' : '--paired'
    """
    cfrna count \\
        --bam ${bam} \\
        --gtf ${gtf} \\
        --strandedness-from ${align_json} \\
        --sample ${prefix} \\
        ${paired} \\
        --out ${prefix}.counts.tsv \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.counts.tsv ${prefix}.counts.tsv.summary
    echo '{}' > ${prefix}.counts.tsv.stats.json
    """
}
