process CFRNA_REPORT {
    tag "${meta.id}"
    label 'process_low'
    conda "${moduleDir}/environment.yml"

    input:
    // exactly the files of this run that the report reads, staged (as links) into the layout of an
    // output folder: results/ holds nothing else (no copy of the published tree, no files of an
    // earlier run into the same --outdir); the report adds report/ and matrix/cfrna.h5ad beside them
    tuple val(meta), path(qc, stageAs: 'results/qc/*'), path(matrix, stageAs: 'results/matrix/*'), path(de, stageAs: 'results/de/*'), path(pathways, stageAs: 'results/pathways/*'), path(counts, stageAs: 'results/counts/*'), path(align, stageAs: 'results/alignment/*'), path(trim, stageAs: 'results/trimmed/*'), path(info, stageAs: 'results/pipeline_info/*')

    output:
    tuple val(meta), path("results/report/index.html"), emit: html
    tuple val(meta), path("results/matrix/cfrna.h5ad"), emit: h5ad
    path "versions.yml"                               , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna-report \\
        --results results \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-report --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p results/report results/matrix
    touch results/report/index.html results/matrix/cfrna.h5ad
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
