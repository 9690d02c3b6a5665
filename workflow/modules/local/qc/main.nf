process CFRNA_QC {
    tag "${meta.id}"
    label 'process_single'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(counts, stageAs: 'counts/*'), path(align, stageAs: 'alignment/*'), path(trim, stageAs: 'trimmed/*')
    // meta: [id: cohort]; counts: *.counts.tsv{,.summary,.stats.json}; align: *.align.json, *.bam, *.bam.bai; trim: *.trim.json
    path samplesheet   // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path gtf           // file: GTF

    output:
    tuple val(meta), path("qc/qc_summary.tsv"), emit: summary
    tuple val(meta), path("qc/*.qc.json")     , emit: json
    tuple val(meta), path("qc/*")             , emit: files      // everything: + multiqc/, qc_thresholds.json
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    mkdir -p counts alignment trimmed
    cfrna-qc \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --gtf ${gtf} \\
        --counts-dir counts \\
        --align-dir alignment \\
        --trim-dir trimmed \\
        --outdir qc \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-qc --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p qc/multiqc
    touch qc/qc_summary.tsv qc/stub.qc.json
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
